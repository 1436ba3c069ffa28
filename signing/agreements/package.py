"""The evidence package of one agreement (docs/TRANSPARENCY.md, 「Evidence packages」): every
record of how it was signed, in files anyone can check offline with `tools/verify.py package`
against the log key's public key, without trusting our database or servers.

`evidence_package_build` reads the rows and returns an `EvidencePackage` (files and their
manifest); `manage.py evidence_export` writes it to a directory, and the staff admin and the
applicant's API send it as a zip (`zip_bytes`). It reads rows only, locks nothing and writes
nothing: the staff download is audited by its view.

Never in a package: face images (none are kept: only the provider's result id and score),
bank-card photos, full identity numbers, secrets or keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime

from core import logkey
from core.errors import Conflict
from core.hashchain import canonical_json, utc_iso
from signing.agreements.evidence import entry_content, evidence_log_name, head_json
from signing.models import (
    Agreement,
    AgreementDocument,
    ConsentText,
    DepositPayment,
    Evidence,
    EvidenceHead,
    FaceCheck,
    Lease,
    PaymentNotification,
    SignatureCharacter,
)

FORMAT = "anju-evidence-package/1"
MANIFEST = "manifest.json"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the same bytes for the same package, whenever zipped

README = """签约证据包 — {title}
协议编号：{agreement_id}　验证码：{code}　状态：{status}

本证据包记录了本协议的签署过程，可在不连接本系统的情况下自行核验：

  python3 verify.py package 本证据包.zip

（verify.py 只需要 Python 3 和 cryptography 库；如已安装 pyHanko，还会核验 PDF 中的数字签名。）
核验内容：每个文件的 SHA-256 与 manifest.json 一致；证据链逐条哈希相连、没有缺失；
证据链的最后一条与「签名头」一致，签名头由系统的日志密钥（Ed25519）签名，
密钥标识 {key_id}，请与公开发布的密钥标识核对；协议正文、条款、签名笔画和 PDF 的哈希
与证据链中的记录一致。

文件说明：
  manifest.json            文件清单（SHA-256）与签名头
  public_key.pem           日志密钥的公钥
  evidence.jsonl           证据链：每行一条，含序号、前一条哈希、本条哈希和内容
  agreement.json           协议概要
  documents/               协议 PDF（已签字、已盖章）
  texts/                   展示给您的协议正文、模板和各项条款原文
  certificates/            CA 根证书，以及 PDF 签名中的证书
  timestamps/              PDF 签名中的时间戳令牌（DER）
  signature/               手写签名：每个字的笔画（characters.json）和系统绘制的图像
  face_checks.json         人脸识别记录：结果编号和比对分数（不含任何人脸图像）
  payments.json            押金支付订单和支付通知（租赁合同）
"""


@dataclass
class EvidencePackage:
    agreement_id: int
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)

    def add(self, name: str, data: bytes) -> None:
        assert name not in self.files and name != MANIFEST, name
        self.files[name] = data

    def add_json(self, name: str, value) -> None:
        self.add(name, (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode())

    def manifest_bytes(self) -> bytes:
        return (json.dumps(self.manifest, ensure_ascii=False, indent=2) + "\n").encode()

    def all_files(self) -> dict[str, bytes]:
        return {**self.files, MANIFEST: self.manifest_bytes()}

    def zip_bytes(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in sorted(self.all_files().items()):
                info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        return out.getvalue()

    def write_to(self, directory) -> list[str]:
        """Write every file under `directory` (created if missing); returns the names."""
        from pathlib import Path

        root = Path(directory)
        for name, data in sorted(self.all_files().items()):
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return sorted(self.all_files())


def package_filename(agreement: Agreement, *, ascii: bool = False) -> str:
    """The download's name: Chinese (the Content-Disposition header encodes it), or ASCII
    for clients that read only the plain `filename`."""
    stem = "evidence-package" if ascii else "签约证据包"
    return f"{stem}-{agreement.verification_code}.zip"


def applicant_package_check(agreement: Agreement) -> None:
    """Applicants download the package of a sealed agreement only: before sealing the record
    is not final (a review may still reject it), and a void or abandoned one has nothing
    signed to prove. Staff may export any agreement. Raises `evidence_package_not_ready`."""
    if agreement.status != Agreement.Status.SEALED:
        raise Conflict("evidence_package_not_ready", "协议盖章后才能下载签约证据包")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _iso(at: datetime | None) -> str | None:
    return utc_iso(at) if at else None


def _pem(cert) -> bytes:
    """An asn1crypto certificate as PEM."""
    from asn1crypto import pem

    return pem.armor("CERTIFICATE", cert.dump())


def _certificate_row(cert, *, source: str, role: str, name: str) -> dict:
    return {
        "file": name,
        "source": source,
        "role": role,
        "subject": cert.subject.human_friendly,
        "issuer": cert.issuer.human_friendly,
        "serial_number": format(cert.serial_number, "x"),
        "not_before": _iso(cert.not_valid_before),
        "not_after": _iso(cert.not_valid_after),
        "sha256": _sha(cert.dump()),
    }


def _pdf_signatures(package: EvidencePackage, pdf_name: str, pdf: bytes, certs: dict) -> list:
    """The certificates and time-stamp tokens embedded in one PDF's signatures, as files;
    returns what each signature holds. A PDF pyHanko cannot read yields nothing (the package
    still carries the file, and the verifier reports it)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.general import find_unique_cms_attribute

    stem = pdf_name.rsplit("/", 1)[-1].removesuffix(".pdf")
    found: list[dict] = []
    try:
        embedded = list(PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures)
    except Exception:  # not readable: nothing to extract
        return found

    def keep(cert, role: str) -> str:
        digest = _sha(cert.dump())
        if digest not in certs:
            name = f"certificates/{digest[:16]}.pem"
            package.add(name, _pem(cert))
            certs[digest] = _certificate_row(cert, source=pdf_name, role=role, name=name)
        return certs[digest]["file"]

    for sig in embedded:
        field_name = str(sig.field_name)
        signer = sig.signer_cert
        chain: list[str] = []
        row: dict = {
            "pdf": pdf_name,
            "field": field_name,
            "signer_certificate": keep(signer, "signer") if signer is not None else None,
            "certificates": chain,
            "timestamp": None,
        }
        for choice in sig.signed_data["certificates"] or []:
            if choice.name == "certificate":
                chain.append(keep(choice.chosen, "chain"))
        try:
            token = find_unique_cms_attribute(
                sig.signer_info["unsigned_attrs"], "signature_time_stamp_token"
            )
        except (KeyError, ValueError):
            token = None
        if token is not None:
            name = f"timestamps/{stem}-{field_name}.tst"
            package.add(name, token.dump())
            tst = token["content"]["encap_content_info"]["content"].parsed
            for choice in token["content"]["certificates"] or []:
                if choice.name == "certificate":
                    keep(choice.chosen, "timestamp authority")
            row["timestamp"] = {
                "file": name,
                "gen_time": _iso(tst["gen_time"].native),
                "serial_number": str(tst["serial_number"].native),
            }
        found.append(row)
    return found


def _consents_shown(rows: list[Evidence]) -> set[tuple[str, int]]:
    shown = set()
    for row in rows:
        for kind, value in ((row.data or {}).get("consents") or {}).items():
            if isinstance(value, dict) and isinstance(value.get("version"), int):
                shown.add((kind, value["version"]))
    return shown


def evidence_package_build(*, agreement_id: int, now: datetime) -> EvidencePackage:
    """The package of `agreement_id` as it stands: see docs/TRANSPARENCY.md for its layout.
    Raises Agreement.DoesNotExist for an unknown id."""
    agreement = Agreement.objects.select_related("template", "family__main_applicant").get(
        pk=agreement_id
    )
    package = EvidencePackage(agreement_id=agreement.pk)
    rows = list(Evidence.objects.filter(agreement=agreement).order_by("seq"))
    head = EvidenceHead.objects.filter(agreement=agreement).first()

    # The chain: each row's hashed content exactly, with its links.
    package.add(
        "evidence.jsonl",
        "".join(
            canonical_json(
                {
                    "seq": row.seq,
                    "prev_hash": row.prev_hash,
                    "hash": row.hash,
                    "entry": entry_content(row),
                }
            )
            + "\n"
            for row in rows
        ).encode(),
    )
    package.add("public_key.pem", logkey.public_key_pem().encode())

    # Documents: every PDF of every attempt (the sealed one is the agreement).
    documents = []
    certs: dict[str, dict] = {}
    signatures = []
    for document in AgreementDocument.objects.filter(agreement=agreement).order_by(
        "attempt", "created_at", "pk"
    ):
        name = f"documents/attempt-{document.attempt}-{document.stage}.pdf"
        pdf = bytes(document.pdf)
        package.add(name, pdf)
        documents.append(
            {
                "file": name,
                "attempt": document.attempt,
                "stage": document.stage,
                "stage_label": document.get_stage_display(),
                "sha256": document.sha256,
                "created_at": _iso(document.created_at),
            }
        )
        signatures += _pdf_signatures(package, name, pdf, certs)
    sealed = next(
        (
            d["file"]
            for d in reversed(documents)
            if d["stage"] == AgreementDocument.Stage.SEALED and d["attempt"] == agreement.attempt
        ),
        None,
    )
    try:
        from cryptography.hazmat.primitives import serialization

        from signing.agreements.ca import authority_load

        root = authority_load().root_cert.public_bytes(serialization.Encoding.PEM)
    except Exception:  # no CA here (a bare export host): the PDFs still carry their chains
        root = None
    if root is not None:
        package.add("certificates/ca-root.pem", root)

    # Texts as shown: the agreement's text, its template version, every consent version.
    template = agreement.template
    package.add("texts/agreement.txt", agreement.rendered_text.encode())
    template_name = f"texts/template-{template.kind}-v{template.version}.txt"
    package.add(template_name, template.body.encode())
    texts = [
        {
            "file": "texts/agreement.txt",
            "what": "agreement",
            "title": agreement.title,
            "sha256": _sha(agreement.rendered_text.encode()),
        },
        {
            "file": template_name,
            "what": "template",
            "kind": template.kind,
            "version": template.version,
            "title": template.title,
            "sha256": _sha(template.body.encode()),
        },
    ]
    for kind, version in sorted(_consents_shown(rows)):
        consent = ConsentText.objects.filter(kind=kind, version=version).first()
        if consent is None:
            continue
        name = f"texts/consent-{kind}-v{version}.txt"
        package.add(name, consent.body.encode())
        texts.append(
            {
                "file": name,
                "what": "consent",
                "kind": kind,
                "version": version,
                "title": consent.title,
                "sha256": _sha(consent.body.encode()),
            }
        )

    # The handwritten signature: strokes (the evidence) and the images rendered from them.
    characters = []
    for char in SignatureCharacter.objects.filter(agreement=agreement).order_by("attempt", "index"):
        png_name = f"signature/attempt-{char.attempt}-{char.index}.png"
        package.add(png_name, bytes(char.png))
        characters.append(
            {
                "attempt": char.attempt,
                "index": char.index,
                "expected": char.expected,
                "box_width": char.box_width,
                "box_height": char.box_height,
                "drawn_at": _iso(char.drawn_at),
                "strokes": char.strokes,
                "strokes_sha256": char.strokes_sha256,
                "png": png_name,
                "png_sha256": char.png_sha256,
            }
        )
    package.add_json("signature/characters.json", characters)

    # Face checks: the provider's result ids and scores; there are no images to leave out.
    package.add_json(
        "face_checks.json",
        [
            {
                "attempt": check.attempt,
                "provider": check.provider,
                "order_id": check.order_id,
                "status": check.status,
                "score": check.score,
                "result_id": check.result_id,
                "created_at": _iso(check.created_at),
                "completed_at": _iso(check.completed_at),
            }
            for check in FaceCheck.objects.filter(agreement=agreement).order_by("created_at", "pk")
        ],
    )

    # The deposit (a lease): its order and every notification received for it.
    lease = Lease.objects.filter(agreement=agreement).first()
    payment = DepositPayment.objects.filter(lease=lease).first() if lease else None
    package.add_json(
        "payments.json",
        {
            "order": None
            if payment is None
            else {
                "provider": payment.provider,
                "out_trade_no": payment.out_trade_no,
                "amount_fen": payment.amount_fen,
                "currency": payment.currency,
                "status": payment.status,
                "transaction_id": payment.transaction_id,
                "receipt_no": payment.receipt_no,
                "created_at": _iso(payment.created_at),
                "paid_at": _iso(payment.paid_at),
            },
            "notifications": []
            if payment is None
            else [
                {
                    "provider": n.provider,
                    "received_at": _iso(n.received_at),
                    "outcome": n.outcome,
                    "code": n.code,
                    "out_trade_no": n.out_trade_no,
                    "transaction_id": n.transaction_id,
                    "amount_fen": n.amount_fen,
                    "body_sha256": n.body_sha256,
                }
                for n in PaymentNotification.objects.filter(
                    provider=payment.provider, out_trade_no=payment.out_trade_no
                ).order_by("received_at", "pk")
            ],
        },
    )

    package.add_json(
        "agreement.json",
        {
            "id": agreement.pk,
            "title": agreement.title,
            "status": agreement.status,
            "status_label": agreement.get_status_display(),
            "verification_code": agreement.verification_code,
            "attempt": agreement.attempt,
            "signer_name": agreement.signer_name,
            "text_sha256": agreement.text_hash,
            "template": {
                "kind": template.kind,
                "version": template.version,
                "body_sha256": agreement.template_sha256,
            },
            "created_at": _iso(agreement.created_at),
            "signed_at": _iso(agreement.signed_at),
            "sealed_at": _iso(agreement.sealed_at),
            "closed_at": _iso(agreement.closed_at),
            "sealed_pdf": sealed,
            "documents": documents,
            "texts": texts,
            "pdf_signatures": signatures,
            "certificates": sorted(certs.values(), key=lambda c: c["file"]),
        },
    )
    package.add(
        "README.txt",
        README.format(
            title=agreement.title,
            agreement_id=agreement.pk,
            code=agreement.verification_code,
            status=agreement.get_status_display(),
            key_id=logkey.key_id(),
        ).encode(),
    )
    package.manifest = {
        "format": FORMAT,
        "log": evidence_log_name(agreement.pk),
        "agreement": agreement.pk,
        "verification_code": agreement.verification_code,
        "exported_at": utc_iso(now),
        "key_id": logkey.key_id(),
        "head": head_json(head) if head is not None else None,
        "sealed_pdf": sealed,
        "files": {name: _sha(data) for name, data in sorted(package.files.items())},
    }
    return package
