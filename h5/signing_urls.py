from django.urls import path

import core.converters  # noqa: F401 (registers <id:...>)
from h5 import document_views as doc
from h5 import signing_views as sig

urlpatterns = [
    path("h5/signing/", sig.signing_index, name="signing"),
    path("h5/signing/<id:agreement_id>/qr/", sig.signing_qr, name="signing-qr"),
    path("h5/signing/<id:agreement_id>/sign/", sig.signing_sign, name="signing-sign"),
    path("h5/signing/<id:agreement_id>/abandon/", sig.signing_abandon, name="signing-abandon"),
    path("h5/signing/<id:agreement_id>/view/", doc.agreement_view, name="signing-view"),
    path("h5/signing/<id:agreement_id>/receipt/", doc.receipt_view, name="signing-receipt"),
    # The URL inside the QR code (signing/agreements/qr.py `qr_url`): short, no trailing slash.
    path("s/<str:token>", sig.qr_entry, name="signing-qr-entry"),
]
