from django.urls import path

import core.converters  # noqa: F401 (registers <id:...>)
from h5 import care_views, views
from h5 import lease_views as lease
from h5 import privacy_views as privacy
from h5 import selection_views as sel

app_name = "h5"

urlpatterns = [
    path("", views.root),
    path("h5/", views.home_page, name="home"),
    path("h5/login/", views.login_page, name="login"),
    path("h5/care/", care_views.care_mode, name="care"),
    path("h5/selection/", sel.selection_index, name="selection"),
    path("h5/selection/result/", sel.selection_result_latest, name="selection-result-latest"),
    path("h5/selection/<id:round_id>/", sel.selection_round, name="selection-round"),
    path(
        "h5/selection/<id:round_id>/declaration/<str:phase>/",
        sel.selection_declaration,
        name="selection-declaration",
    ),
    path("h5/selection/<id:round_id>/pre/", sel.selection_pre, name="selection-pre"),
    path("h5/selection/<id:round_id>/formal/", sel.selection_formal, name="selection-formal"),
    path("h5/selection/<id:round_id>/result/", sel.selection_result, name="selection-result"),
    path("h5/broadcast/", sel.broadcast_index, name="broadcast-index"),
    path("h5/broadcast/<id:round_id>/", sel.broadcast_page, name="broadcast"),
    path("h5/ledger/<id:round_id>/verify/", sel.ledger_verify_page, name="ledger-verify"),
    path("h5/lease/", lease.lease_start, name="lease-start"),
    path("h5/lease/<id:lease_id>/", lease.lease_hub, name="lease"),
    path("h5/lease/<id:lease_id>/deposit/", lease.lease_deposit, name="lease-deposit"),
    path(
        "h5/lease/by-agreement/<id:agreement_id>/deposit/",
        lease.lease_deposit_by_agreement,
        name="lease-deposit-by-agreement",
    ),
    path("h5/me/", lease.me_page, name="me"),
    path("h5/me/leases/", lease.me_leases, name="me-leases"),
    path("h5/privacy/", privacy.privacy_page, name="privacy"),
]
