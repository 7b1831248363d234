from django.apps import AppConfig


class VoiceConfig(AppConfig):
    name = "voice"
    verbose_name = "Voice hotline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Calls and voicemails are Message rows, rendered in the messages app's thread: it asks this app how.
        from messages import timeline

        timeline.channel_template_register(channel="call", template="voice/_call.html")
        timeline.channel_template_register(channel="voicemail", template="voice/_voicemail.html")
