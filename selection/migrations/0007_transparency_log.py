"""The allocation log becomes a transparency log (issue 14): entries carry their leaf hash and
get an index from the sequencer; the hash chain and its single head row go. Existing entries
keep their content, get their leaf hash here and stay pending, so the sequencer indexes them
in their old order (ascending ids) and signs the first head; allocations point at their
entry instead of a sequence number."""

import hashlib
import json
from datetime import UTC

import django.db.models.deletion
from django.db import migrations, models


def _leaf_hash(entry) -> str:
    content = {
        "round": entry.round_id,
        "session": entry.session_id,
        "kind": entry.kind,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "payload": entry.payload,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(b"\x00" + text.encode()).hexdigest()


def forwards(apps, schema_editor):
    LedgerEntry = apps.get_model("selection", "LedgerEntry")
    Allocation = apps.get_model("selection", "Allocation")
    by_seq = {}
    for entry in LedgerEntry.objects.order_by("seq").iterator():
        entry.leaf_hash = _leaf_hash(entry)
        entry.save(update_fields=["leaf_hash"])
        by_seq[entry.seq] = entry.pk
    for allocation in Allocation.objects.all().iterator():
        allocation.ledger_entry_id = by_seq[allocation.ledger_seq]
        allocation.save(update_fields=["ledger_entry"])


class Migration(migrations.Migration):
    dependencies = [
        ("selection", "0006_field_history"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="leaf_hash",
            field=models.CharField(db_index=True, default="", max_length=64, verbose_name="叶哈希"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="ledgerentry",
            name="index",
            field=models.PositiveBigIntegerField(blank=True, null=True, verbose_name="日志序号"),
        ),
        migrations.AddField(
            model_name="allocation",
            name="ledger_entry",
            field=models.OneToOneField(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="allocation",
                to="selection.ledgerentry",
                verbose_name="日志条目",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveField(model_name="allocation", name="ledger_seq"),
        migrations.AlterField(
            model_name="allocation",
            name="ledger_entry",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="allocation",
                to="selection.ledgerentry",
                verbose_name="日志条目",
            ),
        ),
        migrations.RemoveField(model_name="ledgerentry", name="seq"),
        migrations.RemoveField(model_name="ledgerentry", name="prev_hash"),
        migrations.RemoveField(model_name="ledgerentry", name="hash"),
        migrations.AlterModelOptions(
            name="ledgerentry",
            options={
                "ordering": ["id"],
                "verbose_name": "选房日志",
                "verbose_name_plural": "选房日志",
            },
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                fields=("round", "index"), name="ledger_round_index"
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(("index__isnull", True)),
                fields=["round"],
                name="ledger_pending",
            ),
        ),
        migrations.DeleteModel(name="LedgerHead"),
    ]
