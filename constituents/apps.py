from django.apps import AppConfig


class ConstituentsConfig(AppConfig):
    name = "constituents"
    default_auto_field = "django.db.models.BigAutoField"
