from django.apps import AppConfig


class CivicdeskConfig(AppConfig):
    name = "civicdesk"
    verbose_name = "civicdesk"
