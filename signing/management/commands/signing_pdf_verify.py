from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from signing.agreements.pdf_verify import pdf_record_get, pdf_validate

ROLES = {"applicant": "乙方签字", "seal": "甲方盖章"}


class Command(BaseCommand):
    help = (
        "Verify an agreement PDF: each signature's signer, time and validity against the "
        "organisation's CA, the verification code, and (unless --no-db) that the file is the "
        "one the system issued. Exit status 1 on any failure."
    )

    def add_arguments(self, parser):
        parser.add_argument("pdf", type=Path)
        parser.add_argument(
            "--no-db", action="store_true", help="check the signatures only, not the records"
        )

    def handle(self, *args, pdf: Path, no_db: bool, **options):
        try:
            data = pdf.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {pdf}: {exc}") from exc
        report = pdf_validate(pdf=data)
        out = self.stdout.write
        out(f"文件：{pdf}  SHA-256：{report.sha256}")
        out(f"验证码：{report.verification_code or '（无）'}")
        for n, sig in enumerate(report.signatures, start=1):
            when = timezone.localtime(sig.signed_at).isoformat() if sig.signed_at else "（未知）"
            verdict = "有效" if sig.ok else "无效"
            out(f"签名 {n}｜{ROLES.get(sig.field, sig.field)}｜签署人：{sig.signer}｜时间：{when}")
            out(
                f"    {verdict}：完整={sig.intact} 签名值={sig.valid} 证书可信={sig.trusted} "
                f"时间戳={sig.timestamp_ok} 覆盖={sig.coverage} 后续修改={sig.modification or '无'}"
            )
            for problem in sig.problems:
                out(f"    - {problem}")
        failures = list(report.problems)
        if not report.signatures and not failures:
            failures.append("文件中没有数字签名")
        failures += [f"签名 {n} 无效" for n, s in enumerate(report.signatures, 1) if not s.ok]
        if not no_db and report.verification_code:
            record = pdf_record_get(report=report)
            if not record.known:
                failures.append("系统中没有该验证码的协议")
            else:
                out(f"系统记录：《{record.agreement_title}》 当前状态：{record.agreement_status}")
                if record.stored_stage:
                    out(f"    本文件与系统存档的{record.stored_stage}文件一致")
                else:
                    failures.append("本文件不是系统存档的协议文件")
        if failures:
            raise CommandError("验证未通过：" + "；".join(failures))
        stage = "已盖章" if report.sealed else "已签字（未盖章）"
        out(self.style.SUCCESS(f"验证通过：{stage}"))
