from django.urls import path

from h5 import views

app_name = "h5"

urlpatterns = [
    path("", views.root),
    path("h5/", views.home_page, name="home"),
    path("h5/login/", views.login_page, name="login"),
]
