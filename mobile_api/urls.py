from django.urls import path

import core.converters  # noqa: F401 (registers <id:...>)
from mobile_api import (
    accounts_api,
    document_api,
    evidence_api,
    face_api,
    privacy_api,
    realtime_api,
)
from mobile_api import lease_api as lease
from mobile_api import ledger_api as ledger
from mobile_api import selection_api as sel
from mobile_api import selection_result_api as res
from mobile_api import signing_api as sig

app_name = "api"

urlpatterns = [
    path("auth/sms-code/", accounts_api.LoginCodeSendApi.as_view(), name="login-code-send"),
    path("auth/login/", accounts_api.LoginApi.as_view(), name="login"),
    path("auth/login/confirm/", accounts_api.LoginConfirmApi.as_view(), name="login-confirm"),
    path("auth/login/cancel/", accounts_api.LoginCancelApi.as_view(), name="login-cancel"),
    path("auth/logout/", accounts_api.LogoutApi.as_view(), name="logout"),
    path("me/", accounts_api.MeApi.as_view(), name="me"),
    path("me/privacy/", privacy_api.PrivacyNoticeApi.as_view(), name="me-privacy"),
    path("me/personal-data/", privacy_api.PersonalDataApi.as_view(), name="me-personal-data"),
    path("selection/rounds/", sel.RoundListApi.as_view(), name="selection-rounds"),
    path("selection/<id:round_id>/state/", sel.StateApi.as_view(), name="selection-state"),
    path(
        "selection/<id:round_id>/declaration/<str:phase>/",
        sel.DeclarationApi.as_view(),
        name="selection-declaration",
    ),
    path("selection/<id:round_id>/units/", sel.UnitListApi.as_view(), name="selection-units"),
    path(
        "selection/<id:round_id>/unit-filters/",
        sel.UnitFiltersApi.as_view(),
        name="selection-unit-filters",
    ),
    path("selection/<id:round_id>/cart/<str:kind>/", sel.CartApi.as_view(), name="cart"),
    path(
        "selection/<id:round_id>/cart/<str:kind>/items/",
        sel.CartItemAddApi.as_view(),
        name="cart-add",
    ),
    path(
        "selection/<id:round_id>/cart/<str:kind>/items/<id:unit_id>/",
        sel.CartItemRemoveApi.as_view(),
        name="cart-remove",
    ),
    path(
        "selection/<id:round_id>/cart/<str:kind>/items/<id:unit_id>/move/",
        sel.CartItemMoveApi.as_view(),
        name="cart-move",
    ),
    path(
        "selection/<id:round_id>/formal/enter/", sel.FormalEnterApi.as_view(), name="formal-enter"
    ),
    path("selection/<id:round_id>/formal/sync/", sel.CartSyncApi.as_view(), name="formal-sync"),
    path("selection/<id:round_id>/confirm/", res.ConfirmApi.as_view(), name="confirm"),
    path(
        "selection/<id:round_id>/give-up/intent/",
        res.GiveUpIntentApi.as_view(),
        name="give-up-intent",
    ),
    path("selection/<id:round_id>/give-up/", res.GiveUpApi.as_view(), name="give-up"),
    path(
        "selection/<id:round_id>/supplementary/",
        res.SupplementaryApplyApi.as_view(),
        name="supplementary-apply",
    ),
    path("selection/<id:round_id>/result/", res.ResultApi.as_view(), name="selection-result"),
    path(
        "selection/<id:round_id>/result/receipt/",
        res.ReceiptApi.as_view(),
        name="selection-receipt",
    ),
    path("broadcast/<id:round_id>/", res.BroadcastApi.as_view(), name="broadcast"),
    path("ledger/public-key/", ledger.PublicKeyApi.as_view(), name="ledger-key"),
    path("ledger/<id:round_id>/head/", ledger.HeadApi.as_view(), name="ledger-head"),
    path("ledger/<id:round_id>/leaves/<id:index>/", ledger.LeafApi.as_view(), name="ledger-leaf"),
    path(
        "ledger/<id:round_id>/proof/inclusion/",
        ledger.InclusionProofApi.as_view(),
        name="ledger-inclusion",
    ),
    path(
        "ledger/<id:round_id>/proof/consistency/",
        ledger.ConsistencyProofApi.as_view(),
        name="ledger-consistency",
    ),
    path(
        "ledger/<id:round_id>/receipts/<str:code>/",
        ledger.ReceiptByCodeApi.as_view(),
        name="ledger-receipt",
    ),
    path(
        "streams/<stream:stream>/events/",
        realtime_api.StreamEventsApi.as_view(),
        name="stream-events",
    ),
    path(
        "selection/<id:round_id>/live/",
        realtime_api.SelectionLiveApi.as_view(),
        name="selection-live",
    ),
    path("signing/agreements/", sig.AgreementListApi.as_view(), name="agreements"),
    path(
        "signing/agreements/<id:agreement_id>/", sig.AgreementDetailApi.as_view(), name="agreement"
    ),
    path("signing/agreements/<id:agreement_id>/qr/", sig.QrIssueApi.as_view(), name="agreement-qr"),
    *sig.step_urlpatterns,  # the phone flow: one view per step
    path(
        "signing/agreements/<id:agreement_id>/signature/<id:index>/",
        sig.SignatureCharacterApi.as_view(),
        name="agreement-signature",
    ),
    path(
        "signing/agreements/<id:agreement_id>/abandon/",
        sig.AbandonApi.as_view(),
        name="agreement-abandon",
    ),
    path(
        "signing/agreements/<id:agreement_id>/document/",
        sig.DocumentApi.as_view(),
        name="agreement-document",
    ),
    path(
        "signing/agreements/<id:agreement_id>/document/pages/<id:page>/",
        document_api.AgreementPageApi.as_view(),
        name="agreement-document-page",
    ),
    path(
        "signing/agreements/<id:agreement_id>/evidence-package/",
        evidence_api.EvidencePackageApi.as_view(),
        name="agreement-evidence-package",
    ),
    path("signing/consents/<str:kind>/", sig.ConsentTextApi.as_view(), name="consent"),
    path("signing/qr/open/", sig.QrOpenApi.as_view(), name="qr-open"),
    path("signing/verify/<str:code>/", sig.VerifyApi.as_view(), name="verify"),
    path("face/callback/<str:provider>/", face_api.FaceCallbackApi.as_view(), name="face-callback"),
    path("lease/", lease.LeaseListApi.as_view(), name="leases"),
    path("lease/banks/", lease.BankListApi.as_view(), name="lease-banks"),
    path("lease/start/", lease.LeaseStartApi.as_view(), name="lease-start"),
    path("lease/<id:lease_id>/", lease.LeaseDetailApi.as_view(), name="lease"),
    path(
        "lease/<id:lease_id>/mobile/code/",
        lease.MobileCodeApi.as_view(),
        name="lease-mobile-code",
    ),
    path("lease/<id:lease_id>/mobile/", lease.MobileChangeApi.as_view(), name="lease-mobile"),
    path(
        "lease/<id:lease_id>/photos/<str:side>/",
        lease.CardPhotoApi.as_view(),
        name="lease-photo",
    ),
    path("lease/<id:lease_id>/bank/", lease.BankApi.as_view(), name="lease-bank"),
    path("lease/<id:lease_id>/qr/", lease.LeaseQrApi.as_view(), name="lease-qr"),
    path("lease/<id:lease_id>/deposit/", lease.DepositApi.as_view(), name="lease-deposit"),
    path(
        "lease/<id:lease_id>/deposit/refresh/",
        lease.DepositRefreshApi.as_view(),
        name="lease-deposit-refresh",
    ),
    path("lease/<id:lease_id>/receipt/", lease.ReceiptApi.as_view(), name="lease-receipt"),
    path(
        "lease/<id:lease_id>/receipt/pages/<id:page>/",
        document_api.ReceiptPageApi.as_view(),
        name="lease-receipt-page",
    ),
    path(
        "payments/notify/<str:provider>/",
        lease.PaymentNotifyApi.as_view(),
        name="payment-notify",
    ),
]
