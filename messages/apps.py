from django.apps import AppConfig


class MessagesConfig(AppConfig):
    name = "messages"
    # django.contrib.messages owns the label "messages".
    label = "civicdesk_messages"
    verbose_name = "Conversations and messages"
    default_auto_field = "django.db.models.BigAutoField"
