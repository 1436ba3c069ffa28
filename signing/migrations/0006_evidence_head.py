"""The signed evidence head (issue 14 item 3), and heads for the chains that exist already.

Agreements made before this migration have evidence rows but no head. The data step checks
each such chain (sequence, links, hashes, exactly as signing/agreements/evidence.py) and signs
a head over it with the log key at the time of the migration: from then on a cut tail or a
rewritten row is caught as for any new agreement. A chain that is already broken gets no
head, so `signing_evidence_verify` keeps reporting it (a head must never bless a damage).
The rows before the migration are attested only from the migration's time: the head's time
says so.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

from core.hashchain import GENESIS, chain_hash, utc_iso


def _chain_head(rows):
    """(count, last hash) of a sound chain, or None when it is broken."""
    prev, expected = GENESIS, 1
    for row in rows:
        content = {
            "agreement": row.agreement_id,
            "seq": row.seq,
            "kind": row.kind,
            "actor": row.actor_id,
            "at": utc_iso(row.at),
            "ip": row.ip,
            "user_agent": row.user_agent,
            "data": row.data,
        }
        if row.seq != expected or row.prev_hash != prev or chain_hash(content, prev) != row.hash:
            return None
        prev, expected = row.hash, expected + 1
    return expected - 1, prev


def heads_sign(apps, schema_editor):
    from core import logkey

    Evidence = apps.get_model("signing", "Evidence")
    EvidenceHead = apps.get_model("signing", "EvidenceHead")
    agreement_ids = (
        Evidence.objects.order_by().values_list("agreement_id", flat=True).distinct().iterator()
    )
    now = timezone.now()
    for agreement_id in agreement_ids:
        head = _chain_head(Evidence.objects.filter(agreement_id=agreement_id).order_by("seq"))
        if head is None or head[0] == 0:
            continue
        count, last_hash = head
        message = (
            f"anju-evidence/agreement/{agreement_id}\n{count}\n{last_hash}\n{utc_iso(now)}\n"
        ).encode()
        EvidenceHead.objects.create(
            agreement_id=agreement_id,
            count=count,
            last_hash=last_hash,
            time=now,
            key_id=logkey.key_id(),
            signature=logkey.sign(message),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("signing", "0005_chinese_labels"),
    ]

    operations = [
        migrations.CreateModel(
            name="EvidenceHead",
            fields=[
                (
                    "agreement",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        primary_key=True,
                        related_name="evidence_head",
                        serialize=False,
                        to="signing.agreement",
                        verbose_name="协议",
                    ),
                ),
                ("count", models.PositiveIntegerField(verbose_name="条目数")),
                ("last_hash", models.CharField(max_length=64, verbose_name="最后一条哈希")),
                ("time", models.DateTimeField(verbose_name="签名时间")),
                ("key_id", models.CharField(max_length=16, verbose_name="密钥标识")),
                ("signature", models.CharField(max_length=120, verbose_name="签名")),
            ],
            options={
                "verbose_name": "签约证据签名头",
                "verbose_name_plural": "签约证据签名头",
            },
        ),
        migrations.RunPython(heads_sign, migrations.RunPython.noop),
    ]
