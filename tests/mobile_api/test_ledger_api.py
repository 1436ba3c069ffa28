"""The allocation log's public API and the family's receipt: heads, leaves and proofs as
tools/verify.py and RFC 9162 expect them; every bad request a 4xx with a stable code."""

from __future__ import annotations

import pytest

from selection import translog
from selection.models import LedgerEntry, TreeHead
from tests.mobile_api.conftest import ApiClient, error_code
from tests.mobile_api.test_selection_api import as_family
from tests.selection.test_translog import leaves_of, mth, path, played, subproof

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged():
    world = played()
    translog.sequence_pending()
    return world


def test_head_leaf_and_proofs(logged):
    rid = logged.round.pk
    api = ApiClient()
    head = api.get(f"/api/v1/ledger/{rid}/head/").json()
    leaves = leaves_of(rid)
    assert head["size"] == len(leaves) and head["root"] == mth(leaves).hex()
    assert head["log"] == f"anju-ledger/round/{rid}"
    assert translog.head_signature_ok(TreeHead.objects.get(round_id=rid, size=head["size"]))
    key = api.get("/api/v1/ledger/public-key/").json()
    assert key["key_id"] == head["key_id"] and "BEGIN PUBLIC KEY" in key["public_key_pem"]
    leaf = api.get(f"/api/v1/ledger/{rid}/leaves/2/").json()
    assert leaf["leaf_hash"] == leaves[2].hex() and leaf["entry"]["round"] == rid
    proof = api.get(f"/api/v1/ledger/{rid}/proof/inclusion/?index=2&size=5").json()
    assert proof["proof"] == [h.hex() for h in path(2, leaves[:5])]
    assert proof["leaf_hash"] == leaves[2].hex()
    consistency = api.get(f"/api/v1/ledger/{rid}/proof/consistency/?from=3&to={len(leaves)}")
    assert consistency.json()["proof"] == [h.hex() for h in subproof(3, leaves, True)]
    assert consistency.json()["from"] == 3


@pytest.mark.parametrize(
    "suffix,status,code",
    [
        ("leaves/999/", 404, "leaf_not_found"),
        ("leaves/abc/", 404, "not_found"),
        ("proof/inclusion/?index=5&size=5", 400, "invalid_range"),
        ("proof/inclusion/?index=0&size=9999", 400, "size_beyond_tree"),
        ("proof/inclusion/?index=x&size=5", 400, "invalid_input"),
        ("proof/inclusion/?index=-1&size=5", 400, "invalid_input"),
        ("proof/inclusion/?size=5", 400, "invalid_input"),
        ("proof/inclusion/?index=1&size=99999999999999999999999", 400, "invalid_input"),
        ("proof/consistency/?from=5&to=3", 400, "invalid_range"),
        ("proof/consistency/?from=0&to=3", 400, "invalid_input"),
        ("proof/consistency/?from=1&to=9999", 400, "size_beyond_tree"),
        ("proof/consistency/?from=1.5&to=3", 400, "invalid_input"),
        ("receipts/zz/", 400, "invalid_code"),
        ("receipts/0000000000/", 404, "leaf_not_found"),
    ],
)
def test_bad_requests_are_4xx_with_a_stable_code(logged, suffix, status, code):
    response = ApiClient().get(f"/api/v1/ledger/{logged.round.pk}/{suffix}")
    assert response.status_code == status and error_code(response) == code, response.content


def test_an_unknown_round_and_a_round_without_entries():
    api = ApiClient()
    response = api.get("/api/v1/ledger/999999/head/")
    assert response.status_code == 404 and error_code(response) == "round_not_found"
    from tests.worlds import make_world

    empty = make_world(families=1, units=1, sessions=1)
    response = api.get(f"/api/v1/ledger/{empty.round.pk}/head/")
    assert response.status_code == 404 and error_code(response) == "head_not_found"


def test_writes_are_refused():
    response = ApiClient().post("/api/v1/ledger/1/head/", {})
    assert response.status_code == 405


def test_the_familys_receipt_and_the_code_in_its_sms(logged):
    from sms import crypto
    from sms.models import SmsMessage
    from sms.services import sms_outbox_run_due
    from sms.texts import render

    family = logged.families[0]
    api = as_family(family)
    receipt = api.get(f"/api/v1/selection/{logged.round.pk}/result/receipt/").json()
    assert receipt["entry"]["payload"]["family"] == family.pk
    assert receipt["entry"]["kind"] == "confirm" and receipt["head"] is not None
    leaves = leaves_of(logged.round.pk)
    assert receipt["inclusion"] == [h.hex() for h in path(receipt["index"], leaves)]
    code = receipt["code"]
    assert len(code) == 10 and receipt["leaf_hash"].startswith(code)
    sms = SmsMessage.objects.filter(kind="selection_result", phone=family.main_applicant.mobile)
    texts = [render("selection_result", crypto.unseal(m.payload)["params"]) for m in sms]
    assert any(f"核验码{code}。" in text for text in texts), texts
    # Left to the outbox worker: the confirm's answer never waited on the SMS provider.
    assert {m.status for m in sms} == {SmsMessage.Status.QUEUED}
    assert sms_outbox_run_due() >= 1
    assert {m.status for m in sms.all()} == {SmsMessage.Status.SENT}
    public = ApiClient().get(f"/api/v1/ledger/{logged.round.pk}/receipts/{code.upper()}/")
    assert public.status_code == 200 and public.json()["index"] == receipt["index"]


def test_a_receipt_waits_for_the_sequencer_then_carries_its_proof():
    world = played(sessions=1)
    family = world.families[0]
    api = as_family(family)
    url = f"/api/v1/selection/{world.round.pk}/result/receipt/"
    pending = api.get(url).json()
    assert pending["head"] is None and pending["index"] is None and pending["inclusion"] == []
    translog.sequence_pending()
    assert api.get(url).json()["head"]["size"] == LedgerEntry.objects.count()
