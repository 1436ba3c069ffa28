from django.apps import AppConfig


class SigningConfig(AppConfig):
    name = "signing"
    verbose_name = "网上签约"
