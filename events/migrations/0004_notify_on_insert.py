"""The relay's wake-up (core/wakeup.py): NOTIFY anju_events when events are inserted,
delivered at the commit, so the relay publishes them at once instead of finding them on
its next poll."""

from django.db import migrations

CHANNEL = "anju_events"  # core.wakeup.EVENTS_CHANNEL
TABLE = "events_event"
FUNCTION = "anju_notify_events"


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
    dependencies = [("events", "0003_hot_confirm_writes")]

    operations = [migrations.RunPython(create, drop)]
