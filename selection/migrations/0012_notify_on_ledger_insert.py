"""The sequencer's wake-up (core/wakeup.py): NOTIFY anju_ledger when allocation log entries
are inserted, delivered at the commit, so the sequencer signs them into a head at once
instead of finding them on its next poll."""

from django.db import migrations

CHANNEL = "anju_ledger"  # core.wakeup.LEDGER_CHANNEL
TABLE = "selection_ledgerentry"
FUNCTION = "anju_notify_ledger"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite: the embedded quick start's loops poll
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_notify AFTER INSERT ON {TABLE} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_notify ON {TABLE}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("selection", "0011_preselect_announced_label")]

    operations = [migrations.RunPython(create, drop)]
