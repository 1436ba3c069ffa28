"""The applicant's own copy of their personal data (个人信息保护法 第四十五条): a zip with
`personal-data.json` (the records about the applicant, with the full ID and account numbers,
which are the applicant's own) and the bank-card photos still kept. Built only for the
applicant asking (the API takes the applicant from the login, never from the request), and
recorded in the audit trail."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime

from accounts.models import Applicant, DeviceSession
from accounts.services import audit_record
from core.context import RequestContext
from selection.models import Allocation
from signing.models import Agreement, CardPhoto, Lease

FORMAT_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def personal_data(applicant: Applicant) -> tuple[dict, dict[str, bytes]]:
    """The JSON document and the files (name -> bytes) for `applicant`."""
    family = getattr(applicant, "family", None)
    files: dict[str, bytes] = {}
    data: dict = {
        "format": FORMAT_VERSION,
        "applicant": {
            "real_name": applicant.real_name,
            "id_number": applicant.id_number,
            "mobile": applicant.mobile,
            "created_at": _iso(applicant.created_at),
        },
        "family": None,
        "privacy_acknowledgements": [
            {
                "version": ack.version,
                "text_sha256": ack.text_sha256,
                "at": _iso(ack.at),
                "ip": ack.ip,
                "user_agent": ack.user_agent,
            }
            for ack in applicant.privacy_acks.order_by("at", "pk")
        ],
        "logins": [],
        "allocations": [],
        "agreements": [],
        "leases": [],
    }
    if applicant.user_id:
        data["logins"] = [
            {
                "provider": d.provider,
                "ip": d.ip,
                "user_agent": d.user_agent,
                "created_at": _iso(d.created_at),
                "ended_at": _iso(d.ended_at),
                "end_reason": d.end_reason,
            }
            for d in DeviceSession.objects.filter(user_id=applicant.user_id).order_by(
                "created_at", "pk"
            )
        ]
    if family is None:
        return data, files
    data["family"] = {
        "rank": family.rank,
        "household_size": family.household_size,
        "eligible_layouts": family.eligible_layout_labels,
    }
    data["allocations"] = [
        {"round": a.round.name, "unit": a.unit.label, "how": a.get_how_display(), "at": _iso(a.at)}
        for a in Allocation.objects.filter(family=family)
        .select_related("round", "unit")
        .order_by("at", "pk")
    ]
    data["agreements"] = [
        {
            "title": a.title,
            "status": a.get_status_display(),
            "verification_code": a.verification_code,
            "created_at": _iso(a.created_at),
            "signed_at": _iso(a.signed_at),
            "sealed_at": _iso(a.sealed_at),
            "closed_at": _iso(a.closed_at),
        }
        for a in Agreement.objects.filter(family=family).order_by("created_at", "pk")
    ]
    for lease in Lease.objects.filter(agreement__family=family).order_by("created_at", "pk"):
        photos = []
        for photo in CardPhoto.objects.filter(lease=lease).order_by("uploaded_at", "pk"):
            name = f"card-photos/lease-{lease.pk}-{photo.side}-{photo.pk}.jpg"
            files[name] = bytes(photo.image)
            photos.append(
                {
                    "side": photo.get_side_display(),
                    "uploaded_at": _iso(photo.uploaded_at),
                    "sha256": photo.sha256,
                    "file": name,
                }
            )
        data["leases"].append(
            {
                "unit": lease.unit_label,
                "monthly_rent": str(lease.monthly_rent),
                "deposit_fen": lease.deposit_fen,
                "bank": lease.get_bank_display() if lease.bank else "",
                "account_number": lease.account_number or "",
                "account_holder": lease.account_holder,
                "bank_confirmed_at": _iso(lease.bank_confirmed_at),
                "deposit_paid_at": _iso(lease.deposit_paid_at),
                "card_photos": photos,
            }
        )
    return data, files


def personal_data_zip(*, applicant: Applicant, ctx: RequestContext, now: datetime) -> bytes:
    """The zip for the applicant's own download; the download is audited."""
    data, files = personal_data(applicant)
    data["generated_at"] = now.isoformat()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "personal-data.json", json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
        )
        for name, content in sorted(files.items()):
            archive.writestr(name, content)
    audit_record(
        actor=applicant.user,
        action="applicant.personal_data_downloaded",
        target=f"applicant:{applicant.pk}",
        detail={"files": len(files)},
        ip=ctx.ip,
        now=now,
    )
    return out.getvalue()
