"""Delete what the retention schedule says is due (docs/RETENTION.md)."""

from django.core.management.base import BaseCommand

from signing.retention import retention_run


class Command(BaseCommand):
    help = (
        "Delete SMS codes and messages, QR scans, ended device sessions, published outbox "
        "events and bank-card photos whose retention period has passed (docs/RETENTION.md). "
        "The clock runs this daily; running it again deletes nothing more."
    )

    def handle(self, *args, **options):
        for kind, count in retention_run().items():
            self.stdout.write(f"{kind}: {count} deleted")
