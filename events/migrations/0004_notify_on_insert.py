"""The relay's wake-up (core/wakeup.py): NOTIFY anju_events when events are inserted,
delivered at the commit, so the relay publishes them at once instead of finding them on
its next poll."""

from django.db import migrations

from core.wakeup import EVENTS_CHANNEL, notify_on_insert


class Migration(migrations.Migration):
    dependencies = [("events", "0003_hot_confirm_writes")]

    operations = [notify_on_insert("events_event", EVENTS_CHANNEL)]
