from django.apps import AppConfig


class CommonConfig(AppConfig):
    """The plumbing floor, installed only for the one record its Celery plumbing keeps: dead letters."""

    name = "common"
    verbose_name = "Plumbing"
    default_auto_field = "django.db.models.BigAutoField"
