"""The sequencer's wake-up (core/wakeup.py): NOTIFY anju_ledger when allocation log entries
are inserted, delivered at the commit, so the sequencer signs them into a head at once
instead of finding them on its next poll."""

from django.db import migrations

from core.wakeup import LEDGER_CHANNEL, notify_on_insert


class Migration(migrations.Migration):
    dependencies = [("selection", "0011_preselect_announced_label")]

    operations = [notify_on_insert("selection_ledgerentry", LEDGER_CHANNEL)]
