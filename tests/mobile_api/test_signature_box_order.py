"""A signature box answers the agreement's state before it looks at the strokes: a sealed,
void, abandoned or already signed agreement, a flow not at the signature step, or a box past
the name gets its own refusal, never a stroke validation error (issue 13: a stroke with
`"t": 1e400` was reachable on a sealed agreement). Bad strokes are still refused once the box
is open (the controls), through the API and through the domain service alike."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from signing.agreements import flow
from signing.models import Agreement, Evidence, SignatureCharacter
from tests.mobile_api.conftest import error_code
from tests.mobile_api.test_hostile_input import (
    agreement_at_read_step,
    logged_in,
    signature_put,
    stroke_body,
)
from tests.signing.worlds import CTX, strokes

pytestmark = pytest.mark.django_db

Status, Step = Agreement.Status, Agreement.Step

BAD_BODIES = {
    "infinite-t": stroke_body("1e400"),
    "strokes-not-a-list": json.dumps({"strokes": "x", "width": 300, "height": 300}).encode(),
    "no-fields": b"{}",
    "not-an-object": b"[1, 2]",
    "not-json": b"{",
    "nan-literal": stroke_body("NaN"),
}

STATES = {
    "sealed": ({"status": Status.SEALED, "step": Step.SUBMITTED}, 409, "agreement_not_pending"),
    "void": ({"status": Status.VOID}, 409, "agreement_not_pending"),
    "abandoned": ({"status": Status.ABANDONED}, 409, "agreement_not_pending"),
    "signed": ({"status": Status.SIGNED, "step": Step.SUBMITTED}, 409, "agreement_not_pending"),
    "before-reading": ({"step": Step.FACE_VERIFIED}, 409, "step_out_of_order"),
    "signature-confirmed": ({"step": Step.SIGNATURE_DRAWN}, 409, "step_out_of_order"),
}


def _unchanged(agreement: Agreement) -> tuple:
    return (
        SignatureCharacter.objects.filter(agreement=agreement).count(),
        Evidence.objects.filter(agreement=agreement).count(),
    )


@pytest.mark.parametrize("state", STATES, ids=list(STATES))
@pytest.mark.parametrize("body", BAD_BODIES, ids=list(BAD_BODIES))
def test_the_agreement_state_is_answered_before_the_strokes(state, body):
    agreement, applicant = agreement_at_read_step()
    update, status, code = STATES[state]
    now = timezone.now()
    if update.get("status") in (Status.SIGNED, Status.SEALED):
        update = {**update, "signed_at": now}
    if update.get("status") == Status.SEALED:
        update = {**update, "sealed_at": now}
    Agreement.objects.filter(pk=agreement.pk).update(**update)
    before = _unchanged(agreement)
    response = signature_put(logged_in(applicant), agreement, BAD_BODIES[body])
    assert response.status_code == status and error_code(response) == code
    assert _unchanged(agreement) == before


@pytest.mark.parametrize("body", BAD_BODIES, ids=list(BAD_BODIES))
def test_a_box_past_the_name_is_answered_before_the_strokes(body):
    agreement, applicant = agreement_at_read_step()
    api = logged_in(applicant)
    response = api.client.generic(
        "PUT",
        f"/api/v1/signing/agreements/{agreement.pk}/signature/{len(agreement.signer_name)}/",
        BAD_BODIES[body],
        content_type="application/json",
        headers={"X-CSRFToken": api.csrf},
    )
    assert response.status_code == 400 and error_code(response) == "box_unknown"
    assert not SignatureCharacter.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("infinite-t", "invalid_input"),
        ("strokes-not-a-list", "invalid_input"),
        ("no-fields", "invalid_input"),
        ("not-an-object", "invalid_input"),
        ("not-json", "malformed_request"),
        ("nan-literal", "malformed_request"),
    ],
)
def test_control_an_open_box_still_refuses_bad_strokes(body, code):
    agreement, applicant = agreement_at_read_step()
    response = signature_put(logged_in(applicant), agreement, BAD_BODIES[body])
    assert response.status_code == 400 and error_code(response) == code
    assert not SignatureCharacter.objects.exists()
    # And a good character in the same box is stored.
    response = signature_put(logged_in(applicant), agreement, stroke_body("0"))
    assert response.status_code == 200, response.content


def test_the_domain_service_checks_the_state_before_the_strokes_too():
    agreement, applicant = agreement_at_read_step()
    kw = {"agreement_id": agreement.pk, "applicant": applicant, "ctx": CTX, "now": timezone.now()}
    bad = {
        "index": 0,
        "strokes": [[{"x": 1, "y": 1, "t": float("inf")}]],
        "width": 300,
        "height": 300,
    }
    with pytest.raises(Exception) as caught:
        flow.signature_character_save(**bad, **kw)
    assert caught.value.code == "signature_invalid"  # control: the box is open
    Agreement.objects.filter(pk=agreement.pk).update(status=Status.VOID)
    with pytest.raises(Exception) as caught:
        flow.signature_character_save(**bad, **kw)
    assert caught.value.code == "agreement_not_pending"

    def must_not_be_read():
        raise AssertionError("the body was read before the state was checked")

    with pytest.raises(Exception) as caught:
        flow.signature_character_put(index=0, read_input=must_not_be_read, **kw)
    assert caught.value.code == "agreement_not_pending"
    # Control: the same entry reads the body once the box is open.
    Agreement.objects.filter(pk=agreement.pk).update(status=Status.PENDING)
    character = flow.signature_character_put(
        index=0, read_input=lambda: {"strokes": strokes(), "width": 300, "height": 300}, **kw
    )
    assert character.index == 0 and SignatureCharacter.objects.count() == 1
