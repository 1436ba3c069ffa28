"""DEBUG-only pages for people trying the demo (mounted under /dev/ only when DEBUG)."""

from django.urls import path

from h5 import dev_views

urlpatterns = [
    path("sms/", dev_views.sms_inbox, name="dev-sms"),
    path("face/<str:provider_order_id>/", dev_views.face_provider_page, name="dev-face"),
    path("pay/<str:prepay_id>/", dev_views.pay_provider_page, name="dev-pay"),
]
