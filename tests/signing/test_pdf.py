"""The agreement PDF: rendered with the embedded CJK font, signed on the applicant's behalf,
sealed as an incremental update, and validated by pyHanko and by poppler's pdfsig; one
changed byte anywhere in a signed range is refused by both.

pdfsig checks certificates against an NSS database: each test that runs it builds a private
one (certutil) holding only the development CA, so "Certificate is Trusted" is asserted too
rather than tolerating an unknown issuer.
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont
from pyhanko.pdf_utils.reader import PdfFileReader

from core.errors import Conflict, ValidationFailed
from signing.agreements.ca import applicant_certificate_issue, authority_load, dev_ca_ensure
from signing.agreements.pdf import agreement_pdf_render, pdf_seal, pdf_sign_applicant, pdf_validate
from signing.models import (
    Agreement,
    AgreementDocument,
    AgreementTemplate,
    FaceCheck,
    SignatureCharacter,
    TemplateKind,
)
from tests.factories import FamilyFactory

ROOT = Path(__file__).resolve().parents[2]
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
CODE = "AJ7K2M9Q4X"
NAME = "李娜"
CLAUSE = (
    "第{n}条　乙方应当按照本协议约定的用途使用租金补贴，不得转借、转租或者擅自调换住房；"
    "乙方家庭人口、收入、财产等情况发生变化的，应当自变化之日起三十日内如实申报。"
    "甲方按月核发补贴，遇法定节假日顺延（Article {n}: subsidy paid monthly）。"
)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ca")
    dev_ca_ensure(directory=directory, now=timezone.now())
    return directory


@pytest.fixture(autouse=True)
def _signing_settings(settings, ca_dir):
    settings.SIGNING = {**settings.SIGNING, "CA_DIR": ca_dir, "DEV_CA_AUTOCREATE": False}
    settings.SITE_URL = "https://anju.example.gov.cn"


def ink_png(ch: str) -> bytes:
    """A 'handwritten' character as the server renders one: dark ink on transparency."""
    image = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.text(
        (120, 120),
        ch,
        font=ImageFont.truetype(FONT_PATH, 190, index=0),
        fill=(20, 20, 30, 255),
        anchor="mm",
        stroke_width=3,
    )
    draw.line([(30, 200), (210, 190)], fill=(20, 20, 30, 255), width=5)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def agreement(db):
    now = timezone.now()
    family = FamilyFactory(main_applicant__real_name=NAME)
    template = AgreementTemplate.objects.create(
        kind=TemplateKind.RENT_SUBSIDY, version=1, title="租金补贴协议", body="{{ name }}"
    )
    text = "甲方：深圳市住房保障机构（演示）\n乙方：李娜\n\n" + "\n".join(
        CLAUSE.format(n=n) for n in range(1, 31)
    )
    agreement = Agreement.objects.create(
        family=family,
        template=template,
        title="福田区租金补贴协议",
        rendered_text=text,
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        signer_name=NAME,
        window_starts_at=now - timedelta(days=1),
        window_ends_at=now + timedelta(days=2),
        step=Agreement.Step.SIGNATURE_DRAWN,
        verification_code=CODE,
        created_at=now - timedelta(days=1),
        signed_at=now,
    )
    for index, ch in enumerate(NAME):
        png = ink_png(ch)
        SignatureCharacter.objects.create(
            agreement=agreement,
            attempt=1,
            index=index,
            expected=ch,
            strokes=[[[10, 10, 0], [200, 200, 40]]],
            box_width=240,
            box_height=240,
            png=png,
            png_sha256=hashlib.sha256(png).hexdigest(),
            strokes_sha256="0" * 64,
            drawn_at=now,
        )
    FaceCheck.objects.create(
        agreement=agreement,
        attempt=1,
        provider="dev",
        order_id="face-1",
        status=FaceCheck.Status.PASSED,
        score=0.98,
        created_at=now,
        completed_at=now,
    )
    return agreement


@pytest.fixture
def stages(agreement):
    """The three stages of the pipeline, as bytes."""
    now = timezone.now()
    chars = list(agreement.characters.order_by("index"))
    rendered = agreement_pdf_render(agreement=agreement, characters=chars)
    signed = pdf_sign_applicant(pdf=rendered, agreement=agreement, now=now)
    sealed = pdf_seal(pdf=signed, agreement=agreement, now=now + timedelta(hours=2))
    return {"rendered": rendered, "signed": signed, "sealed": sealed, "now": now}


def run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout


def nss_db(tmp_path: Path, ca_dir: Path) -> str:
    db = tmp_path / "nss"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{db}", "-n", "anju-dev-ca", "-t", "C,C,C"]
        + ["-i", str(ca_dir / "root.crt.pem")],
        check=True,
    )
    return f"sql:{db}"


def pdfsig(path: Path, nssdir: str) -> str:
    # No -no-ocsp: poppler 22.12 then reports "Unknown issue with Certificate" for any chain
    # (its disabled-OCSP policy leaves an NSS error behind). The certificates carry no OCSP
    # or CRL address, so the soft-fail OCSP policy has nothing to fetch: still offline.
    result = subprocess.run(
        ["pdfsig", "-nssdir", nssdir, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


def flip(pdf: bytes, offset: int) -> bytes:
    return pdf[:offset] + bytes([pdf[offset] ^ 0x01]) + pdf[offset + 1 :]


def byte_range(pdf: bytes, field_index: int) -> list[int]:
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[field_index]
    return list(sig.byte_range)


@pytest.mark.pdftools
def test_rendered_text_is_extractable_and_the_font_embedded(stages, tmp_path):
    path = tmp_path / "sealed.pdf"
    path.write_bytes(stages["sealed"])
    text = run("pdftotext", "-enc", "UTF-8", str(path), "-")
    flat = re.sub(r"\s+", "", text)
    assert "福田区租金补贴协议" in flat
    assert "乙方应当按照本协议约定的用途使用租金补贴" in flat
    assert "第30条" in flat  # the last clause, on a later page
    assert f"验证码：{CODE}" in flat
    assert f"验证方式：访问https://anju.example.gov.cn/verify/{CODE}核验本协议" in flat
    assert "manage.py" not in flat and "signing_pdf_verify" not in flat  # no developer hint
    assert "第2页/共" in flat  # more than one page

    fonts = run("pdffonts", str(path)).splitlines()[2:]
    assert fonts, "no fonts listed"
    for row in fonts:
        cols = row.split()
        assert "WenQuanYi" in cols[0] or "AnjuCJK" in cols[0] or "MicroHei" in cols[0], row
        assert cols[-5] == "yes" and cols[-4] == "yes", f"not embedded/subset: {row}"


def test_sealed_pdf_validates_in_pyhanko(stages, agreement):
    report = pdf_validate(pdf=stages["sealed"])
    assert report.ok and report.sealed, report
    assert report.verification_code == CODE
    applicant, seal = report.signatures
    assert (applicant.field, applicant.signer, applicant.serial_number) == ("applicant", NAME, CODE)
    assert applicant.intact and applicant.valid and applicant.trusted and applicant.timestamp_ok
    assert applicant.coverage == "entire_revision"
    assert applicant.modification == "form_filling"  # the seal only filled its field
    assert abs(applicant.signed_at - stages["now"]) < timedelta(seconds=1)
    assert (seal.field, seal.unit) == ("seal", "电子印章")
    assert seal.coverage == "entire_file" and seal.trusted and seal.timestamp_ok

    # The seal is an incremental update: the applicant-signed file is a prefix of the sealed
    # one, and the first signature's byte range ends exactly where the signed file ended.
    assert stages["sealed"].startswith(stages["signed"])
    first = byte_range(stages["sealed"], 0)
    assert first[2] + first[3] == len(stages["signed"])
    assert byte_range(stages["signed"], 0) == first

    signed_only = pdf_validate(pdf=stages["signed"])
    assert signed_only.ok and not signed_only.sealed


def test_signatures_stay_valid_after_the_certificate_expired(stages):
    # Judged at the time-stamp, not today: the one-day applicant certificate has long expired.
    with time_machine.travel(timezone.now() + timedelta(days=400), tick=False):
        assert pdf_validate(pdf=stages["sealed"]).ok


@pytest.mark.pdftools
def test_sealed_pdf_validates_in_pdfsig(stages, tmp_path, ca_dir):
    path = tmp_path / "sealed.pdf"
    path.write_bytes(stages["sealed"])
    out = pdfsig(path, nss_db(tmp_path, ca_dir))
    assert out.count("Signature Validation: Signature is Valid.") == 2, out
    assert out.count("Certificate Validation: Certificate is Trusted.") == 2, out
    assert f"Signer Certificate Common Name: {NAME}" in out
    assert "ETSI.CAdES.detached" in out
    assert "Total document signed" in out  # the seal covers the whole file


def tamper_offsets(stages) -> dict[str, int]:
    signed, sealed = stages["signed"], stages["sealed"]
    first = byte_range(sealed, 0)
    body = re.search(rb"stream\r?\n", signed).end() + 40  # inside the first page's content
    assert body < first[1]
    return {
        "applicant revision, page content": body,
        "applicant revision, after its signature": first[2] + 5,
        "seal revision": len(signed) + (len(sealed) - len(signed)) // 3,
        "trailer": len(sealed) - 8,
    }


@pytest.mark.parametrize(
    "where",
    [
        "applicant revision, page content",
        "applicant revision, after its signature",
        "seal revision",
        "trailer",
    ],
)
def test_one_changed_byte_is_refused_by_pyhanko(stages, where):
    offset = tamper_offsets(stages)[where]
    sealed = stages["sealed"]
    seal_range = byte_range(sealed, 1)
    assert offset < seal_range[1] or offset >= seal_range[2], "inside /Contents, not signed"
    report = pdf_validate(pdf=flip(sealed, offset))
    assert not report.ok
    assert any(not s.intact for s in report.signatures) or report.problems, report


@pytest.mark.pdftools
def test_one_changed_byte_is_refused_by_pdfsig(stages, tmp_path, ca_dir):
    offset = tamper_offsets(stages)["applicant revision, page content"]
    path = tmp_path / "tampered.pdf"
    path.write_bytes(flip(stages["sealed"], offset))
    out = pdfsig(path, nss_db(tmp_path, ca_dir))
    assert "Signature Validation: Signature is Valid." not in out, out
    assert out.count("Digest Mismatch") == 2, out  # both signatures cover that byte


def test_bytes_appended_after_the_seal_are_refused(stages):
    report = pdf_validate(pdf=stages["sealed"] + b"\n% appended\n")
    assert not report.ok
    assert "最后一个签名之后有未签名的追加内容" in report.signatures[-1].problems


def test_seal_refuses_a_tampered_or_foreign_pdf(stages, agreement):
    offset = tamper_offsets(stages)["applicant revision, page content"]
    with pytest.raises(Conflict) as err:
        pdf_seal(pdf=flip(stages["signed"], offset), agreement=agreement, now=timezone.now())
    assert err.value.code == "pdf_invalid"
    with pytest.raises(Conflict):
        pdf_seal(pdf=stages["sealed"], agreement=agreement, now=timezone.now())  # sealed twice
    agreement.verification_code = "OTHERCODE1"
    with pytest.raises(Conflict):
        pdf_seal(pdf=stages["signed"], agreement=agreement, now=timezone.now())


def test_applicant_key_is_not_used_before_the_signature_step(agreement):
    chars = list(agreement.characters.order_by("index"))
    rendered = agreement_pdf_render(agreement=agreement, characters=chars)
    agreement.step = Agreement.Step.FACE_VERIFIED  # face checked, characters not yet confirmed
    with pytest.raises(Conflict) as err:
        pdf_sign_applicant(pdf=rendered, agreement=agreement, now=timezone.now())
    assert err.value.code == "signature_not_ready"


def test_render_refuses_missing_characters(agreement):
    with pytest.raises(ValidationFailed) as err:
        agreement_pdf_render(agreement=agreement, characters=list(agreement.characters.all())[:1])
    assert err.value.code == "signature_incomplete"


def test_signatures_under_another_ca_are_not_trusted(stages, tmp_path):
    other = tmp_path / "other-ca"
    dev_ca_ensure(directory=other, now=timezone.now())
    report = pdf_validate(pdf=stages["sealed"], authority=authority_load(directory=other))
    assert not report.ok
    for check in report.signatures:
        assert check.intact and not check.trusted
        assert "证书不受信任（非本机构 CA 签发，或签署时不在有效期内）" in check.problems


def test_applicant_certificate(agreement, ca_dir):
    before = sorted(p.name for p in ca_dir.iterdir())
    now = timezone.now()
    issued = applicant_certificate_issue(agreement=agreement, now=now)
    cert = issued.cert
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NAME
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == CODE
    id_number = agreement.family.main_applicant.id_number
    assert id_number not in cert.subject.rfc4514_string()
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=1, minutes=5)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert cert.issuer == authority_load().root_cert.subject
    assert sorted(p.name for p in ca_dir.iterdir()) == before  # the key went nowhere


def test_dev_ca_command_is_idempotent(tmp_path, settings):
    directory = tmp_path / "devca"
    out = io.StringIO()
    call_command("signing_dev_ca", "--dir", str(directory), stdout=out)
    assert "root" in out.getvalue()
    first = {p.name: p.read_bytes() for p in directory.glob("*.pem")}
    for key in directory.glob("*.key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    root = x509.load_pem_x509_certificate(first["root.crt.pem"])
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    seal = x509.load_pem_x509_certificate(first["seal.crt.pem"])
    usage = seal.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert Image.open(directory / "seal.png").size == (480, 480)

    out = io.StringIO()
    call_command("signing_dev_ca", "--dir", str(directory), stdout=out)
    assert "已存在" in out.getvalue()
    assert {p.name: p.read_bytes() for p in directory.glob("*.pem")} == first


def test_verify_command(stages, agreement, tmp_path):
    now = timezone.now()
    AgreementDocument.objects.create(
        agreement=agreement,
        attempt=1,
        stage=AgreementDocument.Stage.SEALED,
        pdf=stages["sealed"],
        sha256=hashlib.sha256(stages["sealed"]).hexdigest(),
        created_at=now,
    )
    good = tmp_path / "good.pdf"
    good.write_bytes(stages["sealed"])
    out = io.StringIO()
    call_command("signing_pdf_verify", str(good), stdout=out)
    text = out.getvalue()
    assert CODE in text and NAME in text and "通过" in text
    assert "与系统存档的已盖章文件一致" in text

    bad = tmp_path / "bad.pdf"
    bad.write_bytes(flip(stages["sealed"], tamper_offsets(stages)["seal revision"]))
    with pytest.raises(CommandError):
        call_command("signing_pdf_verify", str(bad), stdout=io.StringIO())
    AgreementDocument.objects.all().delete()
    with pytest.raises(CommandError):  # valid signatures, but not the file the system issued
        call_command("signing_pdf_verify", str(good), stdout=io.StringIO())


def test_verify_command_exit_status(stages, tmp_path, ca_dir):
    good = tmp_path / "good.pdf"
    good.write_bytes(stages["sealed"])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(flip(stages["sealed"], tamper_offsets(stages)["trailer"]))
    env = {"ANJU_SIGNING_CA_DIR": str(ca_dir), "PATH": "/usr/bin:/bin", "DEBUG": "1"}
    env["ANJU_VAR_DIR"] = str(tmp_path / "var")
    cmd = [sys.executable, "manage.py", "signing_pdf_verify", "--no-db"]
    ok = subprocess.run([*cmd, str(good)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = subprocess.run([*cmd, str(bad)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "未通过" in refused.stdout + refused.stderr
