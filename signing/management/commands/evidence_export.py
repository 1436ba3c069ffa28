from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from signing.agreements.evidence import evidence_verify
from signing.agreements.package import evidence_package_build
from signing.models import Agreement


class Command(BaseCommand):
    help = (
        "Write an agreement's evidence package into DIR (docs/TRANSPARENCY.md, 「Evidence "
        "packages」): the PDFs, the evidence chain with its hashes and signed head, the texts "
        "as shown, certificates and time-stamp tokens, signature strokes and images, face "
        "result ids and scores, payment notices, the log key's public key and a manifest. "
        "Check it offline with `python tools/verify.py package DIR`. Any agreement may be "
        "exported; the package is written even when the chain fails in the database (it is "
        "the evidence of that), and the command then exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("agreement_id", type=int, metavar="AGREEMENT")
        parser.add_argument("directory", type=Path, metavar="DIR")

    def handle(self, *args, agreement_id: int, directory: Path, **options):
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise CommandError(f"{directory} exists and is not an empty directory")
        try:
            package = evidence_package_build(agreement_id=agreement_id, now=timezone.now())
        except Agreement.DoesNotExist:
            raise CommandError(f"no agreement {agreement_id}") from None
        names = package.write_to(directory)
        self.stdout.write(f"已写入 {len(names)} 个文件到 {directory}")
        check = evidence_verify(agreement_id=agreement_id)
        if not check.ok:
            raise CommandError(
                f"证据链在数据库中未通过验证：第 {check.first_bad_seq} 条起不可信 —— {check.reason}"
            )
        head = package.manifest["head"]
        self.stdout.write(
            self.style.SUCCESS(
                f"证据链 {check.checked} 条，签名头 {head['time']}，密钥 {head['key_id']}"
            )
        )
