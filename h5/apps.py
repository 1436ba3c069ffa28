from django.apps import AppConfig


class H5Config(AppConfig):
    name = "h5"
    verbose_name = "移动端页面"
