from django.urls import path

from mobile_api import accounts_api

app_name = "api"

urlpatterns = [
    path("auth/sms-code/", accounts_api.LoginCodeSendApi.as_view(), name="login-code-send"),
    path("auth/login/", accounts_api.LoginApi.as_view(), name="login"),
    path("auth/logout/", accounts_api.LogoutApi.as_view(), name="logout"),
    path("me/", accounts_api.MeApi.as_view(), name="me"),
]
