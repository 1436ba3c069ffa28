"""Agreement PDF (render → applicant signature → seal) and QR code PNG generation.

    .venv/bin/python bench/signing_pdf.py [--runs 10 --qr-runs 100 --clauses 30]

Targets (the issue): render and sign a sealed agreement PDF ≤ 1 s; a QR code PNG ≤ 10 ms.

PDF: an agreement of `--clauses` clauses (3 A4 pages at 30) with a 2-character signer,
rendered with the embedded CJK font (signing.agreements.pdf.agreement_pdf_render), signed on the
applicant's behalf with a fresh per-agreement certificate (pdf_sign_applicant: key
generation, certificate, PAdES B-T with the in-process TSA), then sealed
(pdf_seal: validation of the applicant's signature, then the incremental update with the
seal certificate and stamp). One timed run = all three; the first run (font parsing, CA
loading) is reported apart as the warm-up, the median covers the rest. Each sealed PDF is
validated after timing; a failure exits 1.

QR: `qrcode` + Pillow, error correction M, box size 10, border 4, a 60-character URL, to PNG
bytes (median of `--qr-runs`); and the project's own `signing.agreements.qr.qr_png` (error correction
M, quiet zone 6, short code printed under it) for comparison.

The database is `anju_bench_pdf` (dropped and recreated); the CA is a fresh temporary
directory.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _lib  # noqa: E402

DB_NAME = _lib.db_name("anju_bench_pdf")
PDF_TARGET_MS, QR_TARGET_MS = 1000.0, 10.0
CLAUSE = (
    "第{n}条　乙方应当按照本协议约定的用途使用租金补贴，不得转借、转租或者擅自调换住房；"
    "乙方家庭人口、收入、财产等情况发生变化的，应当自变化之日起三十日内如实申报。"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed PDF runs after the warm-up")
    parser.add_argument("--qr-runs", type=int, default=100)
    parser.add_argument("--clauses", type=int, default=30)
    return parser.parse_args()


def ink_png(ch: str, font_path: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        (120, 120), ch, font=ImageFont.truetype(font_path, 190, index=0), fill="black", anchor="mm"
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_agreement(n: int, clauses: int):
    """An agreement at the signature step with a passed face check and its 2 characters."""
    from django.conf import settings
    from django.utils import timezone

    from signing.models import (
        Agreement,
        AgreementTemplate,
        FaceCheck,
        SignatureCharacter,
        TemplateKind,
    )
    from tests.factories import FamilyFactory

    now = timezone.now()
    name = "李娜"
    text = "\n".join(CLAUSE.format(n=k) for k in range(1, clauses + 1))
    template, _ = AgreementTemplate.objects.get_or_create(
        kind=TemplateKind.RENT_SUBSIDY, version=1, defaults={"title": "租金补贴协议", "body": "-"}
    )
    agreement = Agreement.objects.create(
        family=FamilyFactory(main_applicant__real_name=name),
        template=template,
        title="福田区租金补贴协议",
        rendered_text=text,
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        signer_name=name,
        window_starts_at=now - timedelta(days=1),
        window_ends_at=now + timedelta(days=2),
        step=Agreement.Step.SIGNATURE_DRAWN,
        verification_code=f"BENCH{n:05d}",
        created_at=now,
        signed_at=now,
    )
    for index, ch in enumerate(name):
        png = ink_png(ch, settings.SIGNING["FONT_PATH"])
        SignatureCharacter.objects.create(
            agreement=agreement,
            attempt=1,
            index=index,
            expected=ch,
            strokes=[],
            box_width=240,
            box_height=240,
            png=png,
            png_sha256=hashlib.sha256(png).hexdigest(),
            strokes_sha256="0" * 64,
            drawn_at=now,
        )
    FaceCheck.objects.create(
        agreement=agreement,
        attempt=1,
        provider="dev",
        order_id=f"bench-{n}",
        status=FaceCheck.Status.PASSED,
        created_at=now,
        completed_at=now,
    )
    return agreement, list(agreement.characters.order_by("index"))


def pdf_run(agreement, characters) -> tuple[bytes, dict[str, float]]:
    from django.utils import timezone

    from signing.agreements.pdf import agreement_pdf_render, pdf_seal, pdf_sign_applicant

    now = timezone.now()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    rendered = agreement_pdf_render(agreement=agreement, characters=characters)
    t1 = time.perf_counter()
    signed = pdf_sign_applicant(pdf=rendered, agreement=agreement, now=now)
    t2 = time.perf_counter()
    sealed = pdf_seal(pdf=signed, agreement=agreement, now=now)
    t3 = time.perf_counter()
    cpu = time.process_time() - cpu0
    phases = {"render": t1 - t0, "sign": t2 - t1, "seal": t3 - t2, "total": t3 - t0, "cpu": cpu}
    return sealed, {k: v * 1000 for k, v in phases.items()}


def qr_png_m(url: str) -> bytes:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(url)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(out, format="PNG")
    return out.getvalue()


def median_ms(fn, runs: int) -> tuple[float, float, float, float]:
    """Wall-clock median, min and max, and the median CPU time of this process (which a
    machine busy with other work inflates much less than the wall clock)."""
    samples, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(samples), min(samples), max(samples), statistics.median(cpu)


def main() -> int:
    args = parse_args()
    os.environ["ANJU_SIGNING_CA_DIR"] = tempfile.mkdtemp(prefix="anju-bench-ca-")
    os.environ["ANJU_SIGNING_DEV_CA_AUTOCREATE"] = "1"
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    migrate_s = _lib.bootstrap(DB_NAME)
    print(
        f"database {DB_NAME} migrated in {migrate_s:.1f} s; CA in {os.environ['ANJU_SIGNING_CA_DIR']}"
    )

    from signing.agreements.pdf import pdf_validate

    failures = 0
    samples: list[dict[str, float]] = []
    for n in range(args.runs + 1):
        agreement, characters = make_agreement(n, args.clauses)
        sealed, phases = pdf_run(agreement, characters)
        started = time.perf_counter()
        report = pdf_validate(pdf=sealed)
        phases["validate"] = (time.perf_counter() - started) * 1000
        if not report.sealed:
            failures += 1
            print(f"run {n}: sealed PDF does NOT validate: {report}")
        if n == 0:
            print(
                f"warm-up: {phases['total']:.0f} ms (render {phases['render']:.0f}, "
                f"sign {phases['sign']:.0f}, seal {phases['seal']:.0f}); {len(sealed)} bytes"
            )
        else:
            samples.append(phases)

    def med(key: str) -> float:
        return statistics.median(s[key] for s in samples)

    totals = [s["total"] for s in samples]
    verdict = "OK" if med("total") <= PDF_TARGET_MS else "OVER"
    print(
        f"render+sign+seal, median of {len(samples)}: {med('total'):.0f} ms "
        f"(min {min(totals):.0f}, max {max(totals):.0f}) — render {med('render'):.0f}, "
        f"sign {med('sign'):.0f}, seal {med('seal'):.0f} — target ≤ {PDF_TARGET_MS:.0f} ms: {verdict}"
    )
    print(f"  CPU time of this process, median: {med('cpu'):.0f} ms")
    print(f"validate the sealed PDF (both signatures), median: {med('validate'):.0f} ms")

    url = f"https://anju.example.gov.cn/s/{secrets.token_urlsafe(24)}"
    qr_png_m(url)  # warm-up: imports, Pillow's PNG encoder
    m_med, m_min, m_max, m_cpu = median_ms(lambda: qr_png_m(url), args.qr_runs)
    verdict = "OK" if m_med <= QR_TARGET_MS else "OVER"
    print(
        f"QR PNG (M, box 10, border 4), median of {args.qr_runs}: {m_med:.2f} ms "
        f"(min {m_min:.2f}, max {m_max:.2f}; CPU {m_cpu:.2f}) — target ≤ {QR_TARGET_MS:.0f} ms: "
        f"{verdict}"
    )
    try:
        from signing.agreements.qr import qr_png
    except ImportError:
        print("signing.agreements.qr.qr_png not available: skipped")
    else:
        ticket = SimpleNamespace(token=secrets.token_urlsafe(24), short_code="ABCD2345")
        qr_png(ticket)
        q_med, q_min, q_max, q_cpu = median_ms(lambda: qr_png(ticket), args.qr_runs)
        print(
            f"signing.agreements.qr.qr_png (M, quiet zone 6, short-code label), median of {args.qr_runs}: "
            f"{q_med:.2f} ms (min {q_min:.2f}, max {q_max:.2f}; CPU {q_cpu:.2f})"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
