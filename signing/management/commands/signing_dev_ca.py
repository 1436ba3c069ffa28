from pathlib import Path

from django.core.management.base import BaseCommand
from django.utils import timezone

from signing.agreements.ca import ca_dir, dev_ca_ensure


class Command(BaseCommand):
    help = (
        "Create the development CA, the organisation's seal and time-stamping certificates and "
        "the seal image under SIGNING['CA_DIR'] (only what is missing; keys 0600). "
        "Development only: production installs the organisation's own certificates there."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=None, help="default: SIGNING['CA_DIR']")

    def handle(self, *args, dir: Path | None, **options):
        directory = dir or ca_dir()
        created = dev_ca_ensure(directory=directory, now=timezone.now())
        if created:
            self.stdout.write(f"{directory}: created {', '.join(created)}")
        else:
            self.stdout.write(f"{directory}: 已存在 (root, seal, tsa, seal.png), nothing created")
