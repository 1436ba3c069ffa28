"""The per-agreement evidence chain: who, when, from which device, what was shown, hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from core.context import RequestContext
from core.hashchain import GENESIS, chain_hash, normalised, utc_iso
from signing.models import Agreement, Evidence


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
    """Append one entry. The caller holds the agreement row lock (every signing service locks
    it first), which serialises appends to one agreement's chain."""
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
    return Evidence.objects.create(
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


@dataclass(frozen=True)
class EvidenceCheck:
    checked: int
    first_bad_seq: int | None
    reason: str = ""


def evidence_verify(*, agreement_id: int) -> EvidenceCheck:
    prev, expected, checked = GENESIS, 1, 0
    for row in Evidence.objects.filter(agreement_id=agreement_id).order_by("seq"):
        if row.seq != expected:
            return EvidenceCheck(checked, expected, f"missing seq {expected}")
        if row.prev_hash != prev:
            return EvidenceCheck(checked, row.seq, "prev_hash does not link to the previous row")
        digest = chain_hash(
            _content(
                agreement_id=row.agreement_id,
                seq=row.seq,
                kind=row.kind,
                actor_id=row.actor_id,
                at=row.at,
                ip=row.ip,
                user_agent=row.user_agent,
                data=row.data,
            ),
            row.prev_hash,
        )
        if digest != row.hash:
            return EvidenceCheck(checked, row.seq, "hash does not match the row's content")
        prev, expected, checked = row.hash, row.seq + 1, checked + 1
    return EvidenceCheck(checked, None)
