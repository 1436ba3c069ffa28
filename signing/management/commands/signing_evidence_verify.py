from django.core.management.base import BaseCommand, CommandError

from signing.agreements.evidence import evidence_verify
from signing.models import Agreement


class Command(BaseCommand):
    help = (
        "Verify agreements' evidence chains and their signed heads (the log key): every row's "
        "sequence, link and hash, then that the chain ends exactly where the signed head says "
        "(a cut tail or a row rewritten with recomputed hashes is caught). Names the first row "
        "that cannot be trusted. Without ids, every agreement. Exit status 1 on any failure."
    )

    def add_arguments(self, parser):
        parser.add_argument("agreement_ids", nargs="*", type=int, metavar="AGREEMENT_ID")

    def handle(self, *args, agreement_ids: list[int], **options):
        ids = agreement_ids or list(Agreement.objects.order_by("pk").values_list("pk", flat=True))
        known = set(Agreement.objects.filter(pk__in=ids).values_list("pk", flat=True))
        failures = []
        for agreement_id in ids:
            if agreement_id not in known:
                failures.append(agreement_id)
                self.stdout.write(f"协议 {agreement_id}：不存在")
                continue
            check = evidence_verify(agreement_id=agreement_id)
            if check.ok:
                head = check.head or {}
                self.stdout.write(
                    f"协议 {agreement_id}：通过（{check.checked} 条，签名头 "
                    f"{head.get('time', '—')} 密钥 {head.get('key_id', '—')}）"
                )
            else:
                failures.append(agreement_id)
                self.stdout.write(
                    f"协议 {agreement_id}：第 {check.first_bad_seq} 条起不可信 —— {check.reason}"
                )
        if failures:
            raise CommandError(f"验证未通过：协议 {', '.join(map(str, failures))}")
        self.stdout.write(self.style.SUCCESS(f"验证通过：{len(ids)} 份协议"))
