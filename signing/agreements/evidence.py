"""The per-agreement evidence chain: who, when, from which device, what was shown, hashes;
and its signed head (docs/TRANSPARENCY.md, 「Evidence packages」).

Every append re-signs the agreement's head — (name, count, last hash, time) with the log key,
which lives in the configuration and never in the database — in the same transaction. So
`evidence_verify` catches what the chain alone cannot: rows cut off the end (the count no
longer matches), and a row rewritten with every later hash recomputed (the chain no longer
ends at the signed hash, and the head cannot be re-signed from the database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from core import logkey
from core.context import RequestContext
from core.hashchain import GENESIS, chain_hash, normalised, utc_iso
from signing.models import Agreement, Evidence, EvidenceHead

# Each kind of entry as staff read it on the agreement's page (the stored kind stays the
# code: it is part of the hashed content).
KIND_LABELS = {
    "created": "创建协议",
    "pushed": "推送签约通知",
    "text_rendered": "生成协议正文",
    "lease_started": "开始租赁签约",
    "mobile_changed": "更换手机号码",
    "card_photo_uploaded": "上传银行卡照片",
    "bank_details_confirmed": "确认租金托收账户",
    "qr_scanned": "手机扫码",
    "phone_taken_over": "另一部手机接续签署",
    "contract_viewed": "查看电子合同",
    "consented_ecert": "同意电子证书服务协议",
    "identity_confirmed": "核对实名信息",
    "face_check_result": "人脸核验结果",
    "face_verified": "人脸核验通过",
    "face_reverified": "再次人脸核验通过",
    "agreement_read": "阅读并确认协议",
    "character_drawn": "手写签名（逐字）",
    "signature_confirmed": "确认手写签名",
    "submitted": "短信验证并提交",
    "deposit_paid": "缴纳押金",
    "deposit_notice_refused": "拒收支付通知",
    "deposit_refund_requested": "申请退还押金",
    "deposit_refunded": "押金已退还",
    "deposit_refund_failed": "押金退款异常",
    "rejected": "审核退回",
    "sealed": "审核通过并盖章",
    "voided": "逾期作废",
    "abandoned": "放弃签约",
}


def evidence_kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def evidence_log_name(agreement_id: int) -> str:
    return f"anju-evidence/agreement/{agreement_id}"


def head_message(*, agreement_id: int, count: int, last_hash: str, time: datetime) -> bytes:
    """What the log key signs: the same shape as the allocation log's tree heads."""
    return logkey.head_text(
        log=evidence_log_name(agreement_id), size=count, digest=last_hash, time=time
    )


def head_json(head: EvidenceHead) -> dict:
    return {
        "log": evidence_log_name(head.agreement_id),
        "count": head.count,
        "last_hash": head.last_hash,
        "time": utc_iso(head.time),
        "key_id": head.key_id,
        "signature": head.signature,
    }


def head_signature_ok(head: EvidenceHead) -> bool:
    message = head_message(
        agreement_id=head.agreement_id, count=head.count, last_hash=head.last_hash, time=head.time
    )
    return logkey.head_ok(message, claimed_key_id=head.key_id, signature=head.signature)


def _head_sign(*, agreement_id: int, count: int, last_hash: str, now: datetime) -> None:
    message = head_message(agreement_id=agreement_id, count=count, last_hash=last_hash, time=now)
    EvidenceHead.objects.update_or_create(
        agreement_id=agreement_id,
        defaults={
            "count": count,
            "last_hash": last_hash,
            "time": now,
            "key_id": logkey.key_id(),
            "signature": logkey.sign(message),
        },
    )


def _content(
    *,
    agreement_id: int,
    seq: int,
    kind: str,
    actor_id: int | None,
    at: datetime,
    ip: str,
    user_agent: str,
    data: dict,
) -> dict:
    return {
        "agreement": agreement_id,
        "seq": seq,
        "kind": kind,
        "actor": actor_id,
        "at": utc_iso(at),
        "ip": ip,
        "user_agent": user_agent,
        "data": data,
    }


def evidence_append(
    *,
    agreement: Agreement,
    kind: str,
    actor=None,
    ctx: RequestContext | None = None,
    data: dict | None = None,
    now: datetime,
) -> Evidence:
    """Append one entry and re-sign the chain's head. The caller holds the agreement row lock
    (every signing service locks it first), which serialises appends to one agreement's chain
    and to its head."""
    assert transaction.get_connection().in_atomic_block, "evidence is written with its change"
    ctx = ctx or RequestContext()
    last = Evidence.objects.filter(agreement=agreement).order_by("-seq").first()
    seq = (last.seq + 1) if last else 1
    prev = last.hash if last else GENESIS
    data = dict(data or {})
    if ctx.signing_session is not None:
        data.setdefault("signing_session", ctx.signing_session)
    stored = normalised(data)
    digest = chain_hash(
        _content(
            agreement_id=agreement.pk,
            seq=seq,
            kind=kind,
            actor_id=actor.pk if actor else None,
            at=now,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            data=stored,
        ),
        prev,
    )
    row = Evidence.objects.create(
        agreement=agreement,
        seq=seq,
        kind=kind,
        actor=actor,
        at=now,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
        data=stored,
        prev_hash=prev,
        hash=digest,
    )
    _head_sign(agreement_id=agreement.pk, count=seq, last_hash=digest, now=now)
    return row


def entry_content(row: Evidence) -> dict:
    """What a row's hash covers (with its prev_hash): the package's entries carry exactly this."""
    return _content(
        agreement_id=row.agreement_id,
        seq=row.seq,
        kind=row.kind,
        actor_id=row.actor_id,
        at=row.at,
        ip=row.ip,
        user_agent=row.user_agent,
        data=row.data,
    )


@dataclass(frozen=True)
class EvidenceCheck:
    """The verdict on one agreement's chain and head. `first_bad_seq` is None only when the
    whole chain is sound and ends exactly at a valid signed head; otherwise it is the first
    row that cannot be trusted (1 when the damage cannot be placed: a rewrite with every later
    hash recomputed, a missing or forged head) and `reason` says why."""

    checked: int
    first_bad_seq: int | None
    reason: str = ""
    head: dict | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def evidence_verify(*, agreement_id: int) -> EvidenceCheck:
    """Check the chain row by row (sequence, links, hashes), then that it ends where the signed
    head says: the head's signature with the log key, its count and its last hash."""
    prev, expected, checked = GENESIS, 1, 0
    for row in Evidence.objects.filter(agreement_id=agreement_id).order_by("seq"):
        if row.seq != expected:
            return EvidenceCheck(checked, expected, f"missing seq {expected}")
        if row.prev_hash != prev:
            return EvidenceCheck(checked, row.seq, "prev_hash does not link to the previous row")
        if chain_hash(entry_content(row), row.prev_hash) != row.hash:
            return EvidenceCheck(checked, row.seq, "hash does not match the row's content")
        prev, expected, checked = row.hash, row.seq + 1, checked + 1
    head = EvidenceHead.objects.filter(agreement_id=agreement_id).first()
    if head is None:
        if checked == 0:
            return EvidenceCheck(0, None)  # no chain, no head: an unknown agreement
        return EvidenceCheck(checked, 1, "no signed head for this chain")
    shown = head_json(head)
    if not head_signature_ok(head):
        return EvidenceCheck(checked, 1, "the head's signature is not valid for the log key", shown)
    if head.count > checked:
        return EvidenceCheck(
            checked,
            checked + 1,
            f"the signed head counts {head.count} rows, the chain has {checked}: rows were cut",
            shown,
        )
    if head.count < checked:
        return EvidenceCheck(
            checked,
            head.count + 1,
            f"rows after the signed head's {head.count}: appended without the log key",
            shown,
        )
    if head.last_hash != prev:
        return EvidenceCheck(
            checked,
            1,
            "the chain does not end at the signed head's hash: a row was rewritten and the "
            "hashes after it recomputed",
            shown,
        )
    return EvidenceCheck(checked, None, "", shown)
