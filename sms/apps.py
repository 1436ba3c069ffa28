import os

from django.apps import AppConfig


class SmsConfig(AppConfig):
    name = "sms"
    verbose_name = "短信"

    def ready(self) -> None:
        # The embedded quick start delivers outbox notices inside the server (make demo).
        if os.environ.get("ANJU_WORKERS_IN_PROCESS") == "1":
            from sms.services import sms_outbox_start_in_process

            sms_outbox_start_in_process()
