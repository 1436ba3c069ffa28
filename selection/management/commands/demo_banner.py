from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from core.urls import absolute_url
from selection.demo import ROUND_NAME, STAFF_PASSWORD, demo_id_number
from selection.models import Round


class Command(BaseCommand):
    help = (
        "Print the demo's URLs and how to log in (used by `make demo`). The links are "
        "SITE_URL's, the same origin as the QR codes, callbacks and PDFs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="", help="address daphne listens on (shown)")
        parser.add_argument("--port", default="", help="port daphne listens on (shown)")

    def handle(self, *args, host: str, port: str, **options):
        url = absolute_url
        rnd = Round.objects.filter(name=ROUND_NAME).first()
        schedule = [
            f"  第{s.order}场 {timezone.localtime(s.starts_at):%H:%M}–"
            f"{timezone.localtime(s.ends_at):%H:%M:%S} ({s.get_status_display()})"
            for s in (rnd.sessions.order_by("order") if rnd else [])
        ]
        broadcast = url(f"/h5/broadcast/{rnd.pk}/") if rnd else ""
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        layer = "Redis" if settings.REDIS_URL else "in-memory"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "安居 Anju demo is starting "
                    f"(database: {database}, channel layer: {layer}, SMS: {settings.SMS['PROVIDER']})",
                    *(
                        [f"  listening on {host}:{port}; links use SITE_URL={settings.SITE_URL}"]
                        if host
                        else []
                    ),
                    f"  手机页面 H5 pages    {url('/h5/')}   (open in a phone-sized window)",
                    f"  管理后台 Staff admin {url('/admin/')}",
                    f"  接口文档 API docs    {url('/api/docs/')}",
                    f"  模拟短信 Demo SMS    {url('/dev/sms/')}",
                    f"  健康检查 Health      {url('/healthz')}",
                    "",
                    "Log in as a demo family (rank 1):",
                    f"  1. open {url('/h5/login/')} and enter ID number {demo_id_number(1)}",
                    "  2. tap 获取验证码, then read the 6-digit code at "
                    f"{url('/dev/sms/')} and tap 登录",
                    "  other demo families: rank 2 "
                    f"{demo_id_number(2)}, rank 21 (second session) {demo_id_number(21)}",
                    "Selection sessions today (rank 1-20 in 第1场, 21-40 in 第2场, ...; pre-selection "
                    "is open until a family's session starts; the clock runs inside the server):",
                    *schedule,
                    f"  房源信息播报 (public) {broadcast}",
                    "Log in as staff at /admin/ with user operator, reviewer or supervisor, "
                    f"password {STAFF_PASSWORD}",
                    "Stop with Ctrl-C.",
                    "",
                ]
            )
        )
