"""Issue 14 item 3: the evidence chain's signed head (a cut-off tail and a row rewritten with
every later hash recomputed are caught, as is a head not signed by the log key), the verify
command, heads for chains older than the head, and the evidence package: what it holds (the
PDFs, texts as shown, strokes and characters, face result ids and scores, never an image of
a face), its manifest, and the export command."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.apps import apps
from django.core.management import CommandError, call_command

from core import logkey
from signing.agreements import services
from signing.agreements.evidence import evidence_verify, head_signature_ok
from signing.agreements.package import FORMAT, MANIFEST, evidence_package_build
from signing.models import (
    AgreementDocument,
    ConsentText,
    Evidence,
    EvidenceHead,
    SignatureCharacter,
)
from tests.signing.evidence_worlds import (
    FACE_RESULT_ID,
    FACE_SCORE,
    NOW,
    SEALED_AT,
    cut_tail,
    rewrite_row,
    sealed_agreement,
)
from tests.signing.viewer_worlds import ca_for
from tests.signing.worlds import make_agreement

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ca")


@pytest.fixture(autouse=True)
def _ca(settings, ca_dir):
    ca_for(settings, ca_dir)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------ the signed head


def test_every_append_re_signs_the_head_with_the_log_key():
    agreement, _ = make_agreement()
    head = EvidenceHead.objects.get(agreement=agreement)
    assert (head.count, head.key_id) == (1, logkey.key_id()) and head_signature_ok(head)
    services.agreement_push(agreement_id=agreement.pk, actor=None, now=NOW)
    head.refresh_from_db()
    last = Evidence.objects.filter(agreement=agreement).order_by("-seq").first()
    assert (head.count, head.last_hash, head.time) == (2, last.hash, NOW)
    assert head_signature_ok(head)
    check = evidence_verify(agreement_id=agreement.pk)
    assert check.ok and check.checked == 2 and check.head["count"] == 2


def test_a_sealed_chain_verifies_and_names_its_head():
    agreement, _ = sealed_agreement()
    check = evidence_verify(agreement_id=agreement.pk)
    assert check.ok, check
    kinds = list(Evidence.objects.filter(agreement=agreement).values_list("kind", flat=True))
    assert kinds[-2:] == ["submitted", "sealed"] and check.checked == len(kinds)
    assert check.head["log"] == f"anju-evidence/agreement/{agreement.pk}"


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_a_cut_off_tail_is_caught(rows):
    """The last row (`sealed`), or the last few: every row left still links and hashes (the
    chain check alone passed this before the head), but the signed head counts more."""
    agreement, _ = sealed_agreement()
    total = Evidence.objects.filter(agreement=agreement).count()
    assert evidence_verify(agreement_id=agreement.pk).ok  # control: the untouched chain passes
    cut = cut_tail(agreement.pk, rows)
    assert cut[-1] == "sealed"
    check = evidence_verify(agreement_id=agreement.pk)
    assert not check.ok
    assert check.checked == total - rows  # every row left is sound on its own
    assert check.first_bad_seq == total - rows + 1
    assert "cut" in check.reason


def test_an_edited_row_with_every_later_hash_recomputed_is_caught():
    agreement, _ = sealed_agreement()
    face = Evidence.objects.get(agreement=agreement, kind="face_verified")
    data = {**face.data, "score": 0.41}
    rewrite_row(agreement.pk, face.seq, data=data)
    rows = list(Evidence.objects.filter(agreement=agreement).order_by("seq"))
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    check = evidence_verify(agreement_id=agreement.pk)
    assert not check.ok and check.first_bad_seq == 1 and "rewritten" in check.reason
    assert check.checked == len(rows)  # the rows alone hash and link again


def test_an_edited_row_without_recomputing_is_named():
    agreement, _ = sealed_agreement()
    row = Evidence.objects.get(agreement=agreement, kind="agreement_read")
    Evidence.objects.filter(pk=row.pk).update(ip="6.6.6.6")
    check = evidence_verify(agreement_id=agreement.pk)
    assert check.first_bad_seq == row.seq and "hash" in check.reason


def test_a_head_moved_to_match_a_rewrite_fails_its_signature():
    """Whoever rewrites the rows can also write the head row, but cannot sign it."""
    agreement, _ = sealed_agreement()
    cut_tail(agreement.pk, 1)
    last = Evidence.objects.filter(agreement=agreement).order_by("-seq").first()
    EvidenceHead.objects.filter(agreement=agreement).update(count=last.seq, last_hash=last.hash)
    check = evidence_verify(agreement_id=agreement.pk)
    assert not check.ok and check.first_bad_seq == 1 and "signature" in check.reason


def test_a_head_signed_with_another_key_is_caught(settings):
    agreement, _ = make_agreement()
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    genuine = settings.LEDGER_SIGNING_KEY
    settings.LEDGER_SIGNING_KEY = other.decode()
    services.agreement_push(agreement_id=agreement.pk, actor=None, now=NOW)  # signs with `other`
    assert evidence_verify(agreement_id=agreement.pk).ok  # under that key, it is sound
    settings.LEDGER_SIGNING_KEY = genuine
    check = evidence_verify(agreement_id=agreement.pk)
    assert not check.ok and "signature" in check.reason


def test_a_chain_without_a_head_is_not_trusted():
    agreement, _ = make_agreement()
    EvidenceHead.objects.filter(agreement=agreement).delete()
    check = evidence_verify(agreement_id=agreement.pk)
    assert not check.ok and check.reason == "no signed head for this chain"


def test_the_migration_signs_heads_for_sound_older_chains_and_not_for_broken_ones():
    sound, _ = make_agreement(name="王小明")
    broken, _ = make_agreement(name="李四")
    services.agreement_push(agreement_id=broken.pk, actor=None, now=NOW)
    EvidenceHead.objects.all().delete()  # as before the migration
    Evidence.objects.filter(agreement=broken, seq=1).update(ip="6.6.6.6")
    migration = importlib.import_module("signing.migrations.0006_evidence_head")
    migration.heads_sign(apps, None)
    assert evidence_verify(agreement_id=sound.pk).ok
    assert not EvidenceHead.objects.filter(agreement=broken).exists()
    assert evidence_verify(agreement_id=broken.pk).first_bad_seq == 1


def test_the_verify_command_passes_a_sound_chain_and_fails_a_cut_one():
    agreement, _ = sealed_agreement()
    out = io.StringIO()
    call_command("signing_evidence_verify", str(agreement.pk), stdout=out)
    assert f"协议 {agreement.pk}：通过" in out.getvalue()
    cut_tail(agreement.pk, 1)
    out = io.StringIO()
    with pytest.raises(CommandError, match="验证未通过"):
        call_command("signing_evidence_verify", stdout=out)
    assert "不可信" in out.getvalue() and "cut" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("signing_evidence_verify", "999999", stdout=io.StringIO())


# ------------------------------------------------------------------------------ the package


def test_the_package_holds_every_record_of_the_signing():
    agreement, _ = sealed_agreement()
    package = evidence_package_build(agreement_id=agreement.pk, now=SEALED_AT)
    files = package.all_files()
    manifest = json.loads(files[MANIFEST])
    assert manifest["format"] == FORMAT and manifest["agreement"] == agreement.pk
    assert manifest["files"] == {n: sha(d) for n, d in files.items() if n != MANIFEST}
    assert manifest["key_id"] == logkey.key_id()
    assert files["public_key.pem"].decode() == logkey.public_key_pem()
    check = evidence_verify(agreement_id=agreement.pk)
    assert manifest["head"] == check.head

    # The sealed PDF (and the signed one before it), byte for byte.
    sealed = AgreementDocument.objects.get(agreement=agreement, stage="sealed")
    assert manifest["sealed_pdf"] == "documents/attempt-1-sealed.pdf"
    assert files["documents/attempt-1-sealed.pdf"] == bytes(sealed.pdf)
    assert "documents/attempt-1-signed.pdf" in files

    # The chain: each row's hashed content and links, exactly as in the database.
    lines = [json.loads(line) for line in files["evidence.jsonl"].decode().splitlines()]
    rows = list(Evidence.objects.filter(agreement=agreement).order_by("seq"))
    assert [(x["seq"], x["prev_hash"], x["hash"]) for x in lines] == [
        (r.seq, r.prev_hash, r.hash) for r in rows
    ]
    sealed_entry = lines[-1]["entry"]
    assert sealed_entry["kind"] == "sealed" and sealed_entry["data"]["pdf_sha256"] == sealed.sha256

    # Texts as shown, each matching the hash the chain recorded when it was shown.
    assert sha(files["texts/agreement.txt"]) == agreement.text_hash
    assert files["texts/agreement.txt"].decode() == agreement.rendered_text
    template = agreement.template
    assert files[f"texts/template-{template.kind}-v{template.version}.txt"].decode() == (
        template.body
    )
    shown = {}
    for line in lines:
        for kind, value in (line["entry"]["data"].get("consents") or {}).items():
            shown[(kind, value["version"])] = value["sha256"]
    assert {k for k, _ in shown} == {"ecert_service", "privacy", "biometric"}
    for (kind, version), digest in shown.items():
        body = files[f"texts/consent-{kind}-v{version}.txt"]
        assert sha(body) == digest
        assert body.decode() == ConsentText.objects.get(kind=kind, version=version).body

    # Strokes and the characters rendered from them, matching the chain's hashes.
    characters = json.loads(files["signature/characters.json"])
    assert len(characters) == len(agreement.signer_name)
    drawn = {
        (x["entry"]["data"]["strokes_sha256"], x["entry"]["data"]["png_sha256"])
        for x in lines
        if x["entry"]["kind"] == "character_drawn"
    }
    for char in characters:
        stored = SignatureCharacter.objects.get(agreement=agreement, index=char["index"])
        assert char["strokes"] == stored.strokes and char["strokes"]
        assert sha(files[char["png"]]) == char["png_sha256"] == stored.png_sha256
        assert (char["strokes_sha256"], char["png_sha256"]) in drawn

    # Certificates and time-stamp tokens out of the PDF signatures, and the CA's root.
    summary = json.loads(files["agreement.json"])
    fields = [(s["pdf"], s["field"]) for s in summary["pdf_signatures"]]
    assert ("documents/attempt-1-sealed.pdf", "seal") in fields
    assert ("documents/attempt-1-sealed.pdf", "applicant") in fields
    for signature in summary["pdf_signatures"]:
        assert signature["signer_certificate"] in files
        assert signature["timestamp"]["file"] in files
    assert "certificates/ca-root.pem" in files
    assert files["certificates/ca-root.pem"].startswith(b"-----BEGIN CERTIFICATE-----")

    # The face check: the provider's result id and score, and nothing else of a face.
    faces = json.loads(files["face_checks.json"])
    assert [(f["result_id"], f["score"], f["status"]) for f in faces] == [
        (FACE_RESULT_ID, FACE_SCORE, "passed")
    ]
    assert set(faces[0]) == {
        "attempt",
        "provider",
        "order_id",
        "status",
        "score",
        "result_id",
        "created_at",
        "completed_at",
    }
    # The only images are the rendered characters: no face, no card photo.
    images = [n for n, d in files.items() if d[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF")]
    images += [n for n, d in files.items() if d[:3] == b"\xff\xd8\xff"]
    assert sorted(images) == sorted(c["png"] for c in characters)
    assert json.loads(files["payments.json"]) == {"order": None, "notifications": []}


def test_the_zip_holds_the_same_files_at_its_root():
    import zipfile

    agreement, _ = sealed_agreement()
    package = evidence_package_build(agreement_id=agreement.pk, now=SEALED_AT)
    archive = zipfile.ZipFile(io.BytesIO(package.zip_bytes()))
    assert {n: archive.read(n) for n in archive.namelist()} == package.all_files()
    # The same package zips to the same bytes.
    assert package.zip_bytes() == package.zip_bytes()


def test_export_writes_the_package_and_refuses_a_used_directory(tmp_path):
    agreement, _ = sealed_agreement()
    out = io.StringIO()
    call_command("evidence_export", str(agreement.pk), str(tmp_path / "pkg"), stdout=out)
    manifest = json.loads((tmp_path / "pkg" / MANIFEST).read_text())
    for name, digest in manifest["files"].items():
        assert sha((tmp_path / "pkg" / name).read_bytes()) == digest
    assert "证据链" in out.getvalue()
    with pytest.raises(CommandError, match="not an empty directory"):
        call_command("evidence_export", str(agreement.pk), str(tmp_path / "pkg"))
    with pytest.raises(CommandError, match="no agreement"):
        call_command("evidence_export", "999999", str(tmp_path / "none"))


def test_export_of_a_broken_chain_writes_the_evidence_and_fails(tmp_path):
    agreement, _ = sealed_agreement()
    cut_tail(agreement.pk, 1)
    with pytest.raises(CommandError, match="未通过验证"):
        call_command("evidence_export", str(agreement.pk), str(tmp_path / "pkg"))
    assert (tmp_path / "pkg" / MANIFEST).exists()


def test_a_lease_package_carries_the_deposit_and_its_notices(settings, tmp_path):
    from tests.signing.lease_worlds import NOW as LEASE_NOW
    from tests.signing.lease_worlds import signing_ca_from_before
    from tests.signing.test_lease_review import reviewer, signed_lease

    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    signing_ca_from_before(settings, tmp_path / "lease-ca")
    _, lease = signed_lease(paid=True)
    services.agreement_approve(agreement_id=lease.agreement_id, actor=reviewer(), now=LEASE_NOW)
    package = evidence_package_build(agreement_id=lease.agreement_id, now=LEASE_NOW)
    payments = json.loads(package.files["payments.json"])
    assert payments["order"]["status"] == "paid"
    assert [n["outcome"] for n in payments["notifications"]] == ["applied"]
    kinds = [
        json.loads(line)["entry"]["kind"]
        for line in package.files["evidence.jsonl"].decode().splitlines()
    ]
    assert kinds[-2:] == ["deposit_paid", "sealed"]
    assert not any(Path(n).suffix in {".jpg", ".jpeg"} for n in package.files)  # no card photo
    # Cutting 「deposit_paid」 and 「sealed」 off is caught.
    cut_tail(lease.agreement_id, 2)
    assert "cut" in evidence_verify(agreement_id=lease.agreement_id).reason
