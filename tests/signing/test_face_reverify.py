"""A phone proving itself again (a second phone after the flow's face step) leaves
`face_reverified` in the evidence when its check passes, once per check; the flow's own face
check leaves `face_verified` and never `face_reverified`, however often its return page is
reloaded.

The regression: a passed check already counts as verifying its phone, so when the return
came in, nothing looked like a re-check any more and the pass went through `face_verified`
(a no-op past the face step): the re-check was in the evidence only as `face_check_result`."""

from __future__ import annotations

import pytest
import time_machine

from signing.face import FaceResult
from signing.face.services import face_check_apply
from signing.models import Agreement, Evidence, FaceCheck
from tests.mobile_api.conftest import error_code
from tests.signing.test_phone_sessions import NOW, _scan, _versions, signing_world  # noqa: F401

pytestmark = pytest.mark.django_db


def _result(order_id: str, *, passed: bool) -> None:
    face_check_apply(
        result=FaceResult(
            order_id=order_id,
            passed=passed,
            score=96.0 if passed else 10.0,
            result_id=f"R-{order_id[-6:]}",
            provider="dev",
        ),
        now=NOW,
    )


def _kinds(agreement) -> list[str]:
    return list(
        Evidence.objects.filter(agreement=agreement)
        .exclude(kind__in=("created", "qr_scanned", "phone_taken_over"))
        .order_by("seq")
        .values_list("kind", flat=True)
    )


@pytest.mark.django_db(transaction=True)  # the login code goes out after commit
def test_a_passed_recheck_on_a_second_phone_is_recorded_as_face_reverified(signing_world):  # noqa: F811
    agreement, _, desktop = signing_world
    base = f"/api/v1/signing/agreements/{agreement.pk}"
    with time_machine.travel(NOW, tick=True):
        first, _ = _scan(desktop, agreement, ip="10.9.0.2")
        versions = _versions(first)
        for name, body in (
            ("contract-viewed", {}),
            ("ecert-consent", {"versions": {k: versions[k] for k in ("ecert_service", "privacy")}}),
            ("identity-confirm", {"versions": {k: versions[k] for k in ("privacy", "biometric")}}),
        ):
            assert first.post(f"{base}/steps/{name}/", body).status_code == 200, name

        # The flow's own face step: face_verified, and a reloaded return page adds nothing.
        own = first.post(f"{base}/steps/face-start/").json()["order_id"]
        assert FaceCheck.objects.get(order_id=own).reverify is False
        _result(own, passed=True)
        for _ in range(2):
            done = first.post(f"{base}/steps/face-complete/", {"order_id": own})
            assert done.status_code == 200, done.content
        assert _kinds(agreement) == [
            "contract_viewed",
            "consented_ecert",
            "identity_confirmed",
            "face_check_result",
            "face_verified",
        ]

        # A second phone scans and takes over: it proves itself again. A failed re-check
        # refuses and records only its result.
        second, _ = _scan(desktop, agreement, ip="10.9.0.3")
        assert second.get(f"{base}/").json()["session"]["verify_needed"] is True
        failed = second.post(f"{base}/steps/face-start/").json()["order_id"]
        assert FaceCheck.objects.get(order_id=failed).reverify is True
        _result(failed, passed=False)
        refused = second.post(f"{base}/steps/face-complete/", {"order_id": failed})
        assert error_code(refused) == "face_not_passed"
        assert "face_reverified" not in _kinds(agreement)

        # The passed re-check: face_reverified naming the check and the phone's session, once
        # however often the return page is reloaded; the flow stays where it was.
        passed = second.post(f"{base}/steps/face-start/").json()["order_id"]
        assert FaceCheck.objects.get(order_id=passed).reverify is True
        _result(passed, passed=True)
        for _ in range(2):
            done = second.post(f"{base}/steps/face-complete/", {"order_id": passed})
            assert done.status_code == 200, done.content
        shown = second.get(f"{base}/").json()
        assert shown["session"]["verified"] and "text" in shown

    assert _kinds(agreement)[5:] == [
        "face_check_result",
        "face_check_result",
        "face_reverified",
    ]
    entry = Evidence.objects.get(agreement=agreement, kind="face_reverified")
    check = FaceCheck.objects.get(order_id=passed)
    assert entry.data == {
        "attempt": 1,
        "signing_session": check.signing_session_id,
        "order_id": passed,
        "result_id": check.result_id,
        "score": check.score,
    }
    assert entry.data["signing_session"] != FaceCheck.objects.get(order_id=own).signing_session_id
    assert Evidence.objects.filter(agreement=agreement, kind="face_verified").count() == 1
    assert Agreement.objects.get(pk=agreement.pk).step == Agreement.Step.FACE_VERIFIED
