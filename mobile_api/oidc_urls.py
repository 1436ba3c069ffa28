app_name = "oidc"

urlpatterns: list = []  # filled by the OIDC adapter
