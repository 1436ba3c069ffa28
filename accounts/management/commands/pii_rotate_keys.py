"""Re-encrypt personal data with the first configured key (docs/RETENTION.md, "Keys")."""

from django.core.management.base import BaseCommand
from django.db import transaction

from core import pii


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (ID numbers, bank account numbers, card photos) with "
        "the first key of ANJU_FIELD_ENCRYPTION_KEYS and recompute the ID numbers' search "
        "hashes with ANJU_PII_SEARCH_HASH_KEY. Run after putting a new key first; then remove "
        "the retired key from the list."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            done = pii.rotate()
        for label, count in done.items():
            self.stdout.write(f"{label}: {count} row(s) re-encrypted")
