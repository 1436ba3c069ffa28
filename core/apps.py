from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared pieces as an app only for what Django finds through apps: the production
    guard's system checks (core/checks.py) and the staff admin's own templates (core/templates)."""

    name = "core"
    label = "anju_core"
    verbose_name = "安居"

    def ready(self) -> None:
        from core import checks  # noqa: F401 (registers the deploy checks)
