from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "实时推送"

    def ready(self):
        # A device session that ends closes its open sockets at once (realtime.device_notices).
        from accounts.signals import device_session_ended
        from realtime.device_notices import on_device_session_ended

        device_session_ended.connect(on_device_session_ended, dispatch_uid="realtime.device")
