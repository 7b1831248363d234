from django.apps import AppConfig


class CorrespondenceConfig(AppConfig):
    name = "correspondence"
    verbose_name = "Correspondence"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The inbox's bulk bar offers "Reply with a form letter"; the messages app asks this app for its URL.
        from messages import timeline

        timeline.inbox_bulk_action_register(
            label="Reply with a form letter",
            url_name="correspondence:bulk-reply-new",
            element_id="bulk-reply",
        )
