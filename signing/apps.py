from django.apps import AppConfig


class SigningConfig(AppConfig):
    name = "signing"
    verbose_name = "网上签约"

    def ready(self) -> None:
        # The login's privacy notice is the consent text of kind "privacy" (signing/consents.py).
        from signing.consents import connect

        connect()
