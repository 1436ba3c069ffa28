"""The documents as an applicant receives them: the lease and the rent-subsidy agreement with
their full texts, one organisation (甲方) in the text, the signature block and the seal
certificate; the property named from the unit, never the selection round; no developer
hint in any PDF; the deposit receipt sealed by the organisation and checked by pdfsig and by
our verifier; template versions that never change, published through the admin.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from pyhanko.pdf_utils.reader import PdfFileReader

from accounts.models import AuditEntry, User
from core.context import RequestContext
from core.errors import DomainError
from selection.models import Round
from signing.agreements import services
from signing.agreements.ca import dev_ca_ensure, seal_for
from signing.agreements.pdf import agreement_pdf_render, pdf_seal, pdf_sign_applicant, pdf_validate
from signing.agreements.seed import (
    CONSULT_HOURS,
    CONSULT_PHONES,
    LEASE_ORGANISATION,
    SUBSIDY_ORGANISATION,
    texts_seed,
)
from signing.lease.deposit import deposit_receipt_pdf_for
from signing.lease.receipt import deposit_receipt_issue, deposit_receipt_pdf, receipt_validate
from signing.lease.services import lease_start
from signing.models import (
    Agreement,
    AgreementTemplate,
    DepositPayment,
    Evidence,
    Lease,
    SignatureCharacter,
    TemplateKind,
)
from tests.factories import FamilyFactory
from tests.signing.lease_worlds import (
    ACCOUNT,
    NOW,
    lease_info_filled,
    make_lease_world,
)
from tests.signing.worlds import CLOSES, OPENS

pytestmark = pytest.mark.django_db

ROUND_NAME = "测试批次XYZ"
LEASE_ORG = "深圳市安居测试住房租赁管理中心"  # not SIGNING["ORG_NAME"]: no fallback hides a slip
CTX = RequestContext(ip="10.4.0.1", user_agent="pytest")
ACCOUNT_MASKED = f"{ACCOUNT[:4]} **** **** {ACCOUNT[-4:]}"


@pytest.fixture
def ca(settings, tmp_path):
    """A development CA made before the lease world's pinned time; seals of further
    organisations are issued on first use, as in development."""
    directory = tmp_path / "ca"
    dev_ca_ensure(directory=directory, now=NOW - timedelta(days=30))
    settings.SIGNING = {**settings.SIGNING, "CA_DIR": directory, "DEV_CA_AUTOCREATE": True}
    settings.SITE_URL = "https://anju.example.gov.cn"
    return directory


def flat_text(pdf: bytes, tmp_path: Path, name: str = "doc.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return re.sub(r"\s+", "", out)


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


def pdfsig(pdf: bytes, tmp_path: Path, nssdir: str, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(pdf)
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


def seal_subject(pdf: bytes) -> dict:
    """The subject of the certificate that made the PDF's `seal` signature, read by pyHanko."""
    reader = PdfFileReader(io.BytesIO(pdf))
    (seal,) = [s for s in reader.embedded_regular_signatures if s.field_name == "seal"]
    return seal.signer_cert.subject.native


def lease_template_for(org: str) -> AgreementTemplate:
    """The seeded lease text, published again under another organisation (a new version)."""
    texts_seed()
    newest = services.template_newest(kind=TemplateKind.LEASE)
    return services.template_revise(
        kind=TemplateKind.LEASE,
        title=newest.title,
        body=newest.body,
        organisation=org,
        consult_phones=newest.consult_phones,
        consult_hours=newest.consult_hours,
        based_on=newest,
        actor=None,
        now=NOW,
    )


def lease_confirmed(world) -> Lease:
    """lease_start, both card photos and the rent direct-debit details (完善承租信息)."""
    Round.objects.filter(pk=world.allocation.round_id).update(name=ROUND_NAME)
    lease = lease_start(applicant=world.applicant, ctx=CTX, now=NOW)
    return lease_info_filled(
        world=world, lease=lease, account_number=ACCOUNT, ctx=CTX, now=NOW, bank="CMB"
    )


def signed_and_sealed(agreement: Agreement, *, now=NOW) -> tuple[bytes, bytes]:
    """The applicant's handwritten characters (a stand-in ink image), then the PDF signed on
    their behalf and sealed by the organisation, as documents.py does after the phone flow."""
    from tests.signing.test_pdf import ink_png

    for index, ch in enumerate(agreement.signer_name):
        png = ink_png(ch)
        SignatureCharacter.objects.create(
            agreement=agreement,
            attempt=agreement.attempt,
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
    agreement.step = Agreement.Step.SIGNATURE_DRAWN
    agreement.signed_at = now
    chars = list(agreement.characters.order_by("index"))
    signed = pdf_sign_applicant(
        pdf=agreement_pdf_render(agreement=agreement, characters=chars),
        agreement=agreement,
        now=now,
    )
    return signed, pdf_seal(pdf=signed, agreement=agreement, now=now + timedelta(hours=1))


# ---------------------------------------------------------------------------- the texts


def test_seeded_templates_carry_their_organisation_and_contacts():
    texts_seed()
    lease = services.template_newest(kind=TemplateKind.LEASE)
    subsidy = services.template_newest(kind=TemplateKind.RENT_SUBSIDY)
    assert (lease.organisation, subsidy.organisation) == (LEASE_ORGANISATION, SUBSIDY_ORGANISATION)
    for template in (lease, subsidy):
        assert template.consult_phones == "0755-23619344、0755-82559564" == CONSULT_PHONES
        assert template.consult_hours == "工作日 9:00-12:00，14:00-18:00" == CONSULT_HOURS
        assert template.body_sha256 == hashlib.sha256(template.body.encode()).hexdigest()
        # The organisation is a variable, never written into the text.
        assert "{{ organisation }}" in template.body
        assert "住房保障机构" not in template.body
        services.template_body_check(kind=template.kind, body=template.body)
    texts_seed()  # idempotent: no further versions
    assert AgreementTemplate.objects.count() == 2


def test_texts_seed_replaces_a_superseded_demo_text_with_a_new_version():
    old = "公共租赁住房租赁合同\n\n出租人：深圳市住房保障机构（演示）\n承租人：{{ name }}"
    AgreementTemplate.objects.create(kind=TemplateKind.LEASE, version=1, title="旧", body=old)
    # A stand-in for the five-line text earlier releases seeded: its hash is the one listed.
    from signing.agreements import seed

    seed.SUPERSEDED_SEED_SHA256.add(hashlib.sha256(old.encode()).hexdigest())
    try:
        texts_seed()
    finally:
        seed.SUPERSEDED_SEED_SHA256.discard(hashlib.sha256(old.encode()).hexdigest())
    versions = AgreementTemplate.objects.filter(kind=TemplateKind.LEASE).order_by("version")
    assert [(t.version, t.body) for t in versions] == [(1, old), (2, seed.LEASE_BODY)]


def test_subsidy_agreement_text_in_full():
    texts_seed()
    family = FamilyFactory(main_applicant__real_name="李娜", household_size=3)
    template = services.template_newest(kind=TemplateKind.RENT_SUBSIDY)
    agreement = services.agreement_create(
        family=family,
        template=template,
        window_starts_at=OPENS,
        window_ends_at=CLOSES,
        actor=None,
        now=OPENS,
    )
    text = agreement.rendered_text
    applicant = family.main_applicant
    assert f"甲方：{SUBSIDY_ORGANISATION}" in text
    assert f"乙方（主申请人）：李娜\n乙方身份证号码：{applicant.id_number_masked}" in text
    assert applicant.id_number not in text
    assert f"协议编号：{agreement.verification_code}" in text
    for clause in (
        "第二条　补贴标准",
        "第三条　补贴发放",
        "第四条　补贴期限",
        "第五条　乙方申报义务",
        "第六条　停止发放与追回",
        "第九条　争议解决",
        "第十条　通知与送达",
    ):
        assert clause in text
    # Guide 001's window and 作废 rule, with the window's own times.
    window = f"{services._deadline(OPENS)} 至 {services._deadline(CLOSES)}"
    assert f"本协议签约期限为 {window}。" in text
    assert "乙方未在签约期限内完成签约的，视为放弃本次申请，逾期未签订的本协议作废。" in text
    assert "《放弃签约声明书》" in text
    assert f"咨询电话 {CONSULT_PHONES}（{CONSULT_HOURS}）" in text
    assert "{{" not in text and "{%" not in text
    assert agreement.template_sha256 == template.body_sha256
    assert agreement.context["organisation"] == SUBSIDY_ORGANISATION
    assert services.agreement_organisation(agreement) == SUBSIDY_ORGANISATION


def test_lease_text_names_the_unit_not_the_round_and_carries_the_debit_details():
    world = make_lease_world()
    texts_seed()
    Round.objects.filter(pk=world.allocation.round_id).update(name=ROUND_NAME)
    lease = lease_start(applicant=world.applicant, ctx=CTX, now=NOW)
    agreement = lease.agreement
    before = agreement.rendered_text
    assert ROUND_NAME not in before and ROUND_NAME not in str(agreement.context)
    assert lease.unit_label == "3栋1201"
    for expected in (
        f"甲方（出租人）：{LEASE_ORGANISATION}",
        "乙方（承租人）：王小明",
        "甲方将房号为 3栋1201 的公共租赁住房",
        "该房屋位于3栋第 12 层，房号 1201，户型一房一厅，朝南，建筑面积 45.20 平方米",
        "月租金为人民币 1469.00 元（大写：人民币壹仟肆佰陆拾玖元整）",
        "押金人民币 2938.00 元（大写：人民币贰仟玖佰叁拾捌元整），为 2 个月的租金",
        "租赁期限为 3 年",
        "第九条　禁止行为",
        "将该房屋转租、转借或者擅自调换",
        "在该房屋内从事违法活动",
        "第十条　合同解除与房屋收回",
        "第十二条　争议解决",
        "深圳市有管辖权的人民法院",
        "第十三条　通知与送达",
        "水费、电费、燃气费、物业服务费",
        "附件：房屋附属设施设备清单",
        "开户银行：（待乙方完善承租信息时确认）",
    ):
        assert expected in before, expected
    assert "{{" not in before

    # 完善承租信息: the bank and the masked account enter the text before it is shown.
    lease_info_filled(
        world=world,
        lease=lease,
        account_number=ACCOUNT,
        ctx=CTX,
        now=NOW,
        bank="CMB",
        holder="王小明",
    )
    agreement.refresh_from_db()
    text = agreement.rendered_text
    assert f"开户银行：招商银行\n账户名：王小明\n银行账号：{ACCOUNT_MASKED}" in text
    assert ACCOUNT not in text
    assert agreement.text_hash == hashlib.sha256(text.encode()).hexdigest()
    rendered = Evidence.objects.get(agreement=agreement, kind="text_rendered")
    assert rendered.data["previous_text_sha256"] == hashlib.sha256(before.encode()).hexdigest()
    assert rendered.data["text_sha256"] == agreement.text_hash


def test_text_is_not_rendered_again_once_the_phone_flow_began():
    texts_seed()
    family = FamilyFactory()
    agreement = services.agreement_create(
        family=family,
        template=services.template_newest(kind=TemplateKind.RENT_SUBSIDY),
        window_starts_at=OPENS,
        window_ends_at=CLOSES,
        actor=None,
        now=OPENS,
    )
    agreement.step = Agreement.Step.CONTRACT_VIEWED
    with pytest.raises(DomainError) as err:
        services.agreement_text_rerender(
            agreement=agreement, context={"name": "别人"}, actor=None, ctx=CTX, now=OPENS
        )
    assert err.value.code == "text_locked"


# ------------------------------------------------------------------------------ the PDFs


@pytest.mark.pdftools
def test_one_organisation_in_text_signature_block_and_seal_certificate(ca, tmp_path):
    world = make_lease_world()
    template = lease_template_for(LEASE_ORG)
    with time_machine.travel(NOW, tick=False):
        lease = lease_confirmed(world)
        agreement = lease.agreement
        assert agreement.template_id == template.pk
        assert f"甲方（出租人）：{LEASE_ORG}" in agreement.rendered_text
        signed, sealed = signed_and_sealed(agreement)
        report = pdf_validate(pdf=sealed)
    assert report.ok and report.sealed, report

    text = flat_text(sealed, tmp_path)
    assert f"甲方（出租人）：{LEASE_ORG}" in text
    block = text[text.rindex("（以下无正文）") :]
    assert f"甲方（盖章）：{LEASE_ORG}" in block
    assert "乙方（签字）：" in block and "签字日期：2026年3月3日" in block
    assert LEASE_ORGANISATION not in text  # the default organisation is named nowhere

    subject = seal_subject(sealed)
    assert subject["organization_name"] == LEASE_ORG
    assert subject["common_name"] == LEASE_ORG
    assert subject["organizational_unit_name"] == "电子印章"
    assert report.signatures[1].signer == LEASE_ORG
    # Its own seal, issued for this organisation, not the deployment's default one.
    seal = seal_for(org_name=LEASE_ORG)
    assert seal.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == LEASE_ORG
    assert (ca / "seals").is_dir()
    info = PdfFileReader(io.BytesIO(sealed)).trailer["/Info"]
    assert str(info["/Author"]) == LEASE_ORG


@pytest.mark.pdftools
def test_round_name_and_developer_hints_appear_in_no_document(ca, tmp_path):
    world = make_lease_world()
    texts_seed()
    with time_machine.travel(NOW, tick=False):
        lease = lease_confirmed(world)
        agreement = lease.agreement
        signed, sealed = signed_and_sealed(agreement)
        receipt = approved_receipt(lease)
    code = agreement.verification_code
    texts = {
        "signed": flat_text(signed, tmp_path, "signed.pdf"),
        "sealed": flat_text(sealed, tmp_path, "sealed.pdf"),
        "receipt": flat_text(receipt, tmp_path, "receipt.pdf"),
    }
    for name, text in texts.items():
        assert ROUND_NAME not in text, name
        assert "manage.py" not in text and "signing_pdf_verify" not in text, name
        assert "signing_dev_ca" not in text and "运行" not in text, name
        assert "3栋1201" in text, name
    assert f"验证方式：访问https://anju.example.gov.cn/verify/{code}核验本合同" in texts["sealed"]
    for raw in (signed, sealed, receipt):  # metadata too (title, subject, author)
        assert b"manage.py" not in raw


def approved_receipt(lease: Lease) -> bytes:
    """The lease approved with its deposit paid (set directly: the journey test walks the
    API), then the receipt as the applicant downloads it."""
    now = NOW + timedelta(hours=2)
    DepositPayment.objects.create(
        lease=lease,
        provider="dev",
        out_trade_no="AJ20260303100000ABCDEF",
        amount_fen=lease.deposit_fen,
        status=DepositPayment.Status.PAID,
        transaction_id="4200000000202603031234567890",
        receipt_no="YJ2026030300000001",
        created_at=now,
        paid_at=now,
    )
    Lease.objects.filter(pk=lease.pk).update(deposit_paid_at=now)
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status=Agreement.Status.SEALED, signed_at=now, sealed_at=now
    )
    lease = Lease.objects.select_related("agreement__family__main_applicant").get(pk=lease.pk)
    return deposit_receipt_pdf_for(lease=lease, now=now + timedelta(minutes=5))


@pytest.mark.pdftools
def test_receipt_is_sealed_by_the_lease_organisation_and_checked_by_pdfsig(ca, tmp_path):
    world = make_lease_world()
    lease_template_for(LEASE_ORG)
    with time_machine.travel(NOW, tick=False):
        lease = lease_confirmed(world)
        receipt = approved_receipt(lease)
        report = receipt_validate(pdf=receipt)
    assert report.ok, report
    (check,) = report.signatures
    assert (check.field, check.signer, check.unit) == ("seal", LEASE_ORG, "电子印章")
    assert check.coverage == "entire_file" and check.timestamp_ok
    assert seal_subject(receipt)["organization_name"] == LEASE_ORG
    text = flat_text(receipt, tmp_path)
    assert f"收款单位{LEASE_ORG}" in text and "加盖收款单位电子印章" in text
    # The contract verifier does not take a receipt for an agreement, nor the other way.
    assert not pdf_validate(pdf=receipt).ok

    nssdir = nss_db(tmp_path, ca)
    out = pdfsig(receipt, tmp_path, nssdir, "receipt.pdf")
    assert "Signature Validation: Signature is Valid." in out, out
    assert "Certificate Validation: Certificate is Trusted." in out, out
    assert f"Signer Certificate Common Name: {LEASE_ORG}" in out, out
    assert "Total document signed" in out and "ETSI.CAdES.detached" in out, out

    # One changed byte inside the page's content: both verifiers refuse the receipt.
    offset = re.search(rb"stream\r?\n", receipt).end() + 40
    sig = PdfFileReader(io.BytesIO(receipt)).embedded_signatures[0]
    assert offset < sig.byte_range[1]  # inside the signed range
    tampered = flip(receipt, offset)
    out = pdfsig(tampered, tmp_path, nssdir, "tampered.pdf")
    assert "Signature Validation: Signature is Valid." not in out, out
    assert "Digest Mismatch" in out, out
    bad = receipt_validate(pdf=tampered)
    assert not bad.ok and not bad.signatures[0].intact


RECEIPT_FIELDS = {
    "receipt_no": "YJ2026030300000002",
    "payer_name": "李娜",
    "id_number_masked": "440***********1234",
    "unit_label": "3栋1201",
    "amount_fen": 293_800,
    "paid_at": NOW,
    "transaction_id": "4200000000202603039999999999",
    "out_trade_no": "AJ20260303100000FEDCBA",
    "org_name": LEASE_ORGANISATION,
    "verification_code": "AJ7K2M9Q4X",
}


@pytest.mark.pdftools
@pytest.mark.parametrize("unit_label", ["3栋1201", "某某花园保障性住房项目" * 6 + " 3栋1201"])
def test_issued_receipt_is_the_rendered_page_plus_the_seal_on_the_issuer_row(
    ca, unit_label, tmp_path
):
    fields = {**RECEIPT_FIELDS, "unit_label": unit_label}
    pdf = deposit_receipt_pdf(**fields)
    assert not receipt_validate(pdf=pdf).ok  # unsealed: no signature at all
    with time_machine.travel(NOW, tick=False):
        issued = deposit_receipt_issue(now=NOW, **fields)
    assert issued.startswith(pdf)  # an incremental update of the rendered page
    assert receipt_validate(pdf=issued).ok
    assert receipt_validate(pdf=issued + b"\n% appended\n").ok is False
    # The seal's widget sits on the page, its centre on the table's last (issuer) row:
    # 12 points above the table's foot, wherever a long unit label pushed that foot.
    reader = PdfFileReader(io.BytesIO(issued))
    page = reader.root["/Pages"]["/Kids"][0]
    (widget,) = [a for a in page["/Annots"] if a.get_object().get("/T") == "seal"]
    x1, y1, x2, y2 = (float(v) for v in widget.get_object()["/Rect"])
    assert 0 < x1 < x2 <= 595 and 0 < y1 < y2 <= 420
    assert round(x2 - x1) == round(y2 - y1) == 100
    path = tmp_path / "receipt.pdf"
    path.write_bytes(issued)
    html = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">收款单位<', html)
    assert found, html
    label_y = 420 - (float(found.group(1)) + float(found.group(2))) / 2  # PDF points, from below
    assert y1 < label_y < y2  # the seal covers the issuer row's height


def test_no_seal_for_an_organisation_without_one_in_production(ca, settings):
    settings.SIGNING = {**settings.SIGNING, "DEV_CA_AUTOCREATE": False}
    with pytest.raises(DomainError) as err:
        seal_for(org_name="未配置印章的机构")
    assert err.value.code == "seal_missing"
    # The deployment's own organisation has the top-level seal.
    default = seal_for(org_name=settings.SIGNING["ORG_NAME"])
    assert (
        default.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == (settings.SIGNING["ORG_NAME"])
    )


def test_blank_organisation_falls_back_to_the_configured_one(settings):
    settings.SIGNING = {**settings.SIGNING, "ORG_NAME": "深圳市某住房保障机构"}
    template = services.template_revise(
        kind=TemplateKind.RENT_SUBSIDY,
        title="租金补贴协议",
        body="甲方：{{ organisation }}\n乙方：{{ name }}",
        actor=None,
        now=OPENS,
    )
    agreement = services.agreement_create(
        family=FamilyFactory(),
        template=template,
        window_starts_at=OPENS,
        window_ends_at=CLOSES,
        actor=None,
        now=OPENS,
    )
    assert agreement.rendered_text.startswith("甲方：深圳市某住房保障机构\n")
    assert services.agreement_organisation(agreement) == "深圳市某住房保障机构"


# --------------------------------------------------------------------------- versions


def make_subsidy_agreement(template: AgreementTemplate) -> Agreement:
    return services.agreement_create(
        family=FamilyFactory(),
        template=template,
        window_starts_at=OPENS,
        window_ends_at=CLOSES,
        actor=None,
        now=OPENS,
    )


def test_revision_is_a_new_version_and_old_agreements_keep_theirs():
    texts_seed()
    v1 = services.template_newest(kind=TemplateKind.RENT_SUBSIDY)
    old = make_subsidy_agreement(v1)
    staff = User.objects.create_user(username="editor", is_staff=True)
    v2 = services.template_revise(
        kind=v1.kind,
        title=v1.title,
        body=v1.body.replace("第四条　补贴期限", "第四条　补贴期限（修订）"),
        organisation=v1.organisation,
        consult_phones=v1.consult_phones,
        consult_hours=v1.consult_hours,
        based_on=v1,
        actor=staff,
        ip="10.9.0.1",
        now=OPENS,
    )
    assert (v2.version, v2.pk != v1.pk) == (v1.version + 1, True)
    assert v2.body_sha256 == hashlib.sha256(v2.body.encode()).hexdigest() != v1.body_sha256
    v1_again = AgreementTemplate.objects.get(pk=v1.pk)
    assert (v1_again.body, v1_again.body_sha256) == (v1.body, v1.body_sha256)  # untouched
    old.refresh_from_db()
    assert (old.template_id, old.template_sha256) == (v1.pk, v1.body_sha256)
    assert "（修订）" not in old.rendered_text

    new = make_subsidy_agreement(v2)
    assert (new.template_id, new.template_sha256) == (v2.pk, v2.body_sha256)
    assert "第四条　补贴期限（修订）" in new.rendered_text
    created = Evidence.objects.get(agreement=new, kind="created")
    assert created.data["template_sha256"] == v2.body_sha256
    # New agreements come from the newest version only.
    with pytest.raises(DomainError) as err:
        make_subsidy_agreement(v1)
    assert err.value.code == "template_outdated"
    entry = AuditEntry.objects.get(action="signing.template_revised", actor=staff)
    assert entry.detail["version"] == v2.version
    assert entry.detail["previous_version"] == v1.version
    assert entry.detail["previous_body_sha256"] == v1.body_sha256
    assert entry.ip == "10.9.0.1"


def test_a_version_is_never_saved_again():
    texts_seed()
    template = services.template_newest(kind=TemplateKind.LEASE)
    template.body = "改过的正文"
    with pytest.raises(ValueError):
        template.save()
    assert AgreementTemplate.objects.get(pk=template.pk).body != "改过的正文"


def test_a_template_changed_behind_the_service_is_refused():
    texts_seed()
    template = services.template_newest(kind=TemplateKind.RENT_SUBSIDY)
    AgreementTemplate.objects.filter(pk=template.pk).update(body=template.body + "\n附加条款")
    with pytest.raises(DomainError) as err:
        make_subsidy_agreement(AgreementTemplate.objects.get(pk=template.pk))
    assert err.value.code == "template_tampered"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"body": "{% if name %}未闭合"}, "template_invalid"),
        ({"body": "甲方：{{ organsation }}"}, "template_variable_unknown"),
        ({"body": "{% if unit_label %}房屋{% endif %}"}, "template_variable_unknown"),
        ({"body": "  "}, "template_body_required"),
        ({"title": ""}, "template_title_required"),
        ({"kind": "nope"}, "template_kind_unknown"),
        ({}, "template_unchanged"),
    ],
)
def test_revision_refusals(changes, code):
    texts_seed()
    base = services.template_newest(kind=TemplateKind.RENT_SUBSIDY)
    fields = {
        "kind": base.kind,
        "title": base.title,
        "body": base.body,
        "organisation": base.organisation,
        "consult_phones": base.consult_phones,
        "consult_hours": base.consult_hours,
        **changes,
    }
    with pytest.raises(DomainError) as err:
        services.template_revise(**fields, based_on=base, actor=None, now=OPENS)
    assert err.value.code == code
    assert AgreementTemplate.objects.filter(kind=TemplateKind.RENT_SUBSIDY).count() == 1


def test_revision_from_a_stale_version_is_refused():
    texts_seed()
    v1 = services.template_newest(kind=TemplateKind.RENT_SUBSIDY)
    fields = {"kind": v1.kind, "title": v1.title, "organisation": v1.organisation}
    services.template_revise(**fields, body=v1.body + "\n一", based_on=v1, actor=None, now=OPENS)
    with pytest.raises(DomainError) as err:
        services.template_revise(
            **fields, body=v1.body + "\n二", based_on=v1, actor=None, now=OPENS
        )
    assert err.value.code == "template_outdated"


# ------------------------------------------------------------------------------- admin


def staff_client(role: str | None) -> tuple[Client, User]:
    user = User.objects.create_user(username=f"staff-{role}", password="x", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client, user


def revision_post(base: AgreementTemplate, **changes) -> dict:
    return {
        "title": base.title,
        "organisation": base.organisation,
        "consult_phones": base.consult_phones,
        "consult_hours": base.consult_hours,
        "body": base.body,
        **changes,
    }


def test_admin_edit_publishes_a_new_version_through_the_service():
    texts_seed()
    base = services.template_newest(kind=TemplateKind.LEASE)
    in_use_before = base.body
    client, user = staff_client("supervisor")
    url = reverse("admin:signing_agreementtemplate_change", args=[base.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for label in ("甲方（出租人）名称", "咨询电话", "咨询时间", "正文", "发布新版本", "版本记录"):
        assert label in html, label
    # Each variable with what it fills in, not its English name alone.
    assert "<code>monthly_rent</code>（月租金" in html and "<code>name</code>（" in html
    listing = client.get(reverse("admin:signing_agreementtemplate_changelist")).content.decode()
    for label in ("标题", "类型", "版本", "甲方", "已用于协议（份）", "最新版本", "创建时间"):
        assert label in listing, label

    body = base.body.replace("第七条　相关费用", "第七条　相关费用及其缴纳")
    response = client.post(url, revision_post(base, body=body, kind="ignored"))
    new = services.template_newest(kind=TemplateKind.LEASE)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == reverse("admin:signing_agreementtemplate_change", args=[new.pk])
    assert (new.version, new.kind, new.body) == (base.version + 1, TemplateKind.LEASE, body)
    assert AgreementTemplate.objects.get(pk=base.pk).body == in_use_before
    entry = AuditEntry.objects.get(action="signing.template_revised", actor=user)
    assert entry.detail["version"] == new.version

    # A refused revision shows the reason on the form and publishes nothing.
    stale = client.post(url, revision_post(base, body=body + "\n再改"))
    assert stale.status_code == 200
    assert "该模板已有更新的版本" in stale.content.decode()
    bad = client.post(
        reverse("admin:signing_agreementtemplate_change", args=[new.pk]),
        revision_post(new, body="{{ nmae }}"),
    )
    assert "未定义的变量：nmae" in bad.content.decode()
    assert AgreementTemplate.objects.filter(kind=TemplateKind.LEASE).count() == 2


@pytest.mark.parametrize("role", ["operator", "reviewer"])
def test_admin_template_revision_needs_the_publishing_role(role):
    texts_seed()
    base = services.template_newest(kind=TemplateKind.LEASE)
    client, _ = staff_client(role)
    url = reverse("admin:signing_agreementtemplate_change", args=[base.pk])
    page = client.get(url)
    assert page.status_code == 200 and "仅供查看" in page.content.decode()
    refused = client.post(url, revision_post(base, body=base.body + "\n补充"))
    assert refused.status_code == 403
    assert client.get(reverse("admin:signing_agreementtemplate_add")).status_code == 403
    assert AgreementTemplate.objects.filter(kind=TemplateKind.LEASE).count() == 1


def test_admin_template_pages_refuse_the_anonymous_and_staff_without_a_role():
    texts_seed()
    base = services.template_newest(kind=TemplateKind.LEASE)
    url = reverse("admin:signing_agreementtemplate_change", args=[base.pk])
    anonymous = Client().post(url, revision_post(base, body=base.body + "\n补充"))
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    client, _ = staff_client(None)
    assert client.post(url, revision_post(base, body=base.body + "\n补充")).status_code == 403
    assert AgreementTemplate.objects.filter(kind=TemplateKind.LEASE).count() == 1


def test_admin_bulk_create_offers_only_the_newest_versions():
    texts_seed()
    v1 = services.template_newest(kind=TemplateKind.RENT_SUBSIDY)
    v2 = services.template_revise(
        kind=v1.kind,
        title=v1.title,
        body=v1.body + "\n",
        organisation="另一机构",
        based_on=v1,
        actor=None,
        now=OPENS,
    )
    from signing.admin import BulkCreateForm

    offered = set(BulkCreateForm().fields["template"].queryset.values_list("pk", flat=True))
    assert v2.pk in offered and v1.pk not in offered
