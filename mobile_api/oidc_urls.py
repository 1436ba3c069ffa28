"""Redirect endpoints of the unified identity platform login, mounted at /auth/oidc/."""

from django.urls import path

from mobile_api import oidc_views

app_name = "oidc"

urlpatterns = [
    path("start/", oidc_views.oidc_start, name="start"),
    path("callback/", oidc_views.oidc_callback, name="callback"),
    path("confirm/", oidc_views.oidc_confirm, name="confirm"),
    path("cancel/", oidc_views.oidc_cancel, name="cancel"),
]
