"""`tools/verify.py package`, run as an applicant or auditor would (a subprocess, outside the
project, nothing of Anju importable) on packages written by `manage.py evidence_export` and on
the downloaded zip: a sound package passes; a cut-off tail, an edited row (with or without every
later hash and the manifest recomputed), an edited or extra file and a head signed by another
key are each caught and named. Without pyHanko the chain, hashes and head are still checked and
the report says the PDF signatures were not."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.utils import timezone

from signing.agreements.package import evidence_package_build
from tests.signing.evidence_worlds import cut_tail, sealed_agreement
from tests.signing.viewer_worlds import ca_for

VERIFY = Path(__file__).resolve().parents[2] / "tools" / "verify.py"

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ca")


@pytest.fixture(autouse=True)
def _ca(settings, ca_dir):
    ca_for(settings, ca_dir)


def run(*args, without_pyhanko: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    if without_pyhanko:  # as on a machine where only cryptography is installed
        code = (
            "import runpy, sys; sys.modules['pyhanko'] = None; "
            f"sys.argv = {[str(VERIFY), *map(str, args)]!r}; "
            f"runpy.run_path({str(VERIFY)!r}, run_name='__main__')"
        )
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, str(VERIFY), *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=Path(args[1]).parent, env=env
    )


def assert_passes(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: OK" in result.stdout


def assert_caught(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RESULT: FAILED" in result.stdout
    for phrase in phrases:
        assert phrase in result.stdout, result.stdout


@pytest.fixture
def exported(tmp_path) -> Path:
    agreement, _ = sealed_agreement()
    call_command("evidence_export", str(agreement.pk), str(tmp_path / "pkg"))
    return tmp_path / "pkg"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remanifest(folder: Path) -> None:
    """Recompute manifest.json's hashes, as someone editing the package would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {name: sha((folder / name).read_bytes()) for name in manifest["files"]}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))


def chain_lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "evidence.jsonl").read_text().splitlines()]


def write_chain(folder: Path, lines: list[dict]) -> None:
    text = "".join(
        json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for x in lines
    )
    (folder / "evidence.jsonl").write_text(text)


def test_a_sound_package_passes_with_its_pdf_signatures_checked(exported):
    result = run("package", exported)
    assert_passes(result)
    assert "Evidence chain:" in result.stdout and "Signed head:" in result.stdout
    assert "PDF signatures (pyHanko): 3 signature(s) in 2 PDF(s)" in result.stdout


def test_without_pyhanko_the_chain_hashes_and_head_are_still_checked(exported):
    result = run("package", exported, without_pyhanko=True)
    assert_passes(result)
    assert "PDF signatures: NOT checked (pyHanko is not installed" in result.stdout
    # and a cut tail is still caught that way
    write_chain(exported, chain_lines(exported)[:-1])
    remanifest(exported)
    assert_caught(run("package", exported, without_pyhanko=True), "rows were cut off")


def test_the_downloaded_zip_passes_and_a_zip_with_an_extra_file_fails(tmp_path):
    import zipfile

    agreement, _ = sealed_agreement()
    package = evidence_package_build(agreement_id=agreement.pk, now=timezone.now())
    good = tmp_path / "签约证据包.zip"
    good.write_bytes(package.zip_bytes())
    assert_passes(run("package", good))
    extra = tmp_path / "extra.zip"
    shutil.copy(good, extra)
    with zipfile.ZipFile(extra, "a") as archive:
        archive.writestr("notes.txt", "added later")
    assert_caught(run("package", extra), "notes.txt: is in the package but not in manifest.json")


@pytest.mark.parametrize("rows", [1, 3])
def test_a_cut_off_tail_is_caught_even_with_the_manifest_recomputed(exported, rows):
    write_chain(exported, chain_lines(exported)[:-rows])
    remanifest(exported)
    assert_caught(run("package", exported), "rows were cut off")


def test_a_package_exported_after_the_tail_was_cut_in_the_database_fails(tmp_path):
    from django.core.management.base import CommandError

    agreement, _ = sealed_agreement()
    cut_tail(agreement.pk, 1)
    with pytest.raises(CommandError):
        call_command("evidence_export", str(agreement.pk), str(tmp_path / "pkg"))
    assert_caught(run("package", tmp_path / "pkg"), "rows were cut off")


def test_an_edited_row_is_caught(exported):
    lines = chain_lines(exported)
    face = next(x for x in lines if x["entry"]["kind"] == "face_verified")
    face["entry"]["data"]["score"] = 0.41
    write_chain(exported, lines)
    remanifest(exported)
    assert_caught(run("package", exported), f"line {face['seq']}: hash does not match the entry")


def test_an_edited_row_with_every_later_hash_recomputed_is_caught_by_the_head(exported):
    lines = chain_lines(exported)
    face = next(x for x in lines if x["entry"]["kind"] == "face_verified")
    face["entry"]["data"]["score"] = 0.41
    prev = None
    for line in lines:
        if prev is not None:
            line["prev_hash"] = prev
        content = {**line["entry"], "prev_hash": line["prev_hash"]}
        line["hash"] = sha(
            json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        )
        prev = line["hash"]
    write_chain(exported, lines)
    remanifest(exported)
    assert_caught(run("package", exported), "a row was rewritten")


def test_an_edited_file_is_caught_with_or_without_the_manifest(exported):
    path = exported / "texts" / "agreement.txt"
    path.write_text(path.read_text().replace("乙方", "丙方", 1))
    assert_caught(run("package", exported), "texts/agreement.txt: its SHA-256 differs")
    remanifest(exported)
    assert_caught(run("package", exported), "is not the text the chain recorded as shown")


def test_an_edited_signature_stroke_is_caught(exported):
    path = exported / "signature" / "characters.json"
    characters = json.loads(path.read_text())
    characters[0]["strokes"][0][0]["x"] += 5
    path.write_text(json.dumps(characters, ensure_ascii=False))
    remanifest(exported)
    assert_caught(run("package", exported), "the strokes do not match their SHA-256")


def test_a_pdf_edited_after_signing_is_caught(exported):
    path = exported / "documents" / "attempt-1-sealed.pdf"
    data = bytearray(path.read_bytes())
    at = data.index(b"/Producer") if b"/Producer" in data else len(data) // 2
    data[at + 1] ^= 1
    path.write_bytes(bytes(data))
    remanifest(exported)
    assert_caught(run("package", exported), "the chain does not record this PDF")


def test_a_head_re_signed_with_another_key_is_caught(exported):
    """Whoever rewrites a package can sign a head with their own key and ship its public key:
    --key with the organisation's published key catches it."""
    genuine = exported.parent / "published_key.pem"
    shutil.copy(exported / "public_key.pem", genuine)
    write_chain(exported, chain_lines(exported)[:-1])
    lines = chain_lines(exported)
    forger = Ed25519PrivateKey.generate()
    manifest = json.loads((exported / "manifest.json").read_text())
    head = manifest["head"]
    raw = forger.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    head.update(count=len(lines), last_hash=lines[-1]["hash"], key_id=sha(raw)[:16])
    message = f"{head['log']}\n{head['count']}\n{head['last_hash']}\n{head['time']}\n".encode()
    head["signature"] = base64.b64encode(forger.sign(message)).decode()
    (exported / "public_key.pem").write_bytes(
        forger.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (exported / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    remanifest(exported)
    assert_caught(run("package", exported, "--key", genuine), "not by the log key")
    # The same head with a signature that does not match it:
    head["count"] += 1
    (exported / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    remanifest(exported)
    assert_caught(run("package", exported), "the signature is not valid for this head")
