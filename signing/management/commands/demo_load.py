"""The quick start's demo data: the selection round (selection.demo) and the agreements waiting
to be signed (signing.demo). Lives in signing because signing builds on selection, not the
other way round."""

from django.core.management.base import BaseCommand

from selection.demo import STAFF_PASSWORD, demo_data_load
from signing.demo import demo_signing_load


class Command(BaseCommand):
    help = "Load (or refresh) the demo round, units, families and staff users. Idempotent."

    def handle(self, *args, **options):
        summary = demo_data_load()
        agreements = demo_signing_load()
        applicant = summary.first_family.main_applicant
        self.stdout.write(
            f"演示数据：{summary.round.name}\n"
            f"  房源 {summary.units} 套，家庭 {summary.families} 户，场次 {summary.sessions} 场\n"
            f"  演示家庭（排位 1）：{applicant.real_name}，身份证号码 {applicant.id_number}\n"
            f"  工作人员账号（密码均为 {STAFF_PASSWORD}）："
            + "，".join(f"{name}（{label}）" for name, label in summary.staff.items())
            + f"\n  待签协议 {len(agreements)} 份（排位 1-3 的家庭，网上签约）"
        )
