"""《个人信息保护政策》 at login: the applicant acknowledges the current version (the newest
ConsentText of kind "privacy", versioned like the other consent texts) before using anything
else, and again whenever a newer version is added.

- Pages (`PrivacyNoticeMiddleware`): a logged-in applicant who has not acknowledged the
  current version is sent to /h5/privacy/?next=<the page>.
- API (`mobile_api.auth.IsApplicant`): 403 `privacy_notice_required` (views that must stay
  reachable, such as the notice's own, set `privacy_exempt = True`).
- No privacy text configured: nothing to acknowledge (the gate is open).
- The text is signing's consent text of kind "privacy"; signing registers the loader and
  reloads the notice when a consent text is saved (signing/apps.py, signing/consents.py).

The current version is remembered per process for settings.PRIVACY_NOTICE_CACHE_SECONDS
(default 30; every applicant request checks it) and read again at once in this process when
a consent text is saved; 0 reads it on every request (the browser tests' server, whose tests
add the texts from another process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.http import HttpResponseRedirect

from accounts.models import Applicant, PrivacyAcknowledgement, User
from core.context import RequestContext
from core.errors import Conflict, NotAllowed
from core.locking import lock_first

PROCESS_CACHE_SECONDS = 30.0
NOTICE_PATH = "/h5/privacy/"
# Pages reachable before the notice is acknowledged.
OPEN_PAGES = (NOTICE_PATH, "/h5/login/")


class PrivacyNoticeRequired(NotAllowed):
    kind = "forbidden"
    code = "privacy_notice_required"
    message = "请先阅读并同意《个人信息保护政策》"


@dataclass(frozen=True)
class Notice:
    version: int
    title: str
    body: str
    sha256: str


_cache: dict[str, tuple[float, Notice | None]] = {}
_cache_lock = threading.Lock()


_source: Callable[[], Notice | None] | None = None


def privacy_notice_source(load: Callable[[], Notice | None]) -> None:
    """Where the current notice comes from: the signing app, which owns the consent texts,
    registers its loader when it starts (signing/apps.py), so accounts imports no domain app
    above it."""
    global _source
    _source = load
    privacy_forget()


def _load() -> Notice | None:
    return _source() if _source is not None else None


def privacy_current() -> Notice | None:
    """The current notice (the newest version), or None when none is configured."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get("current")
    if hit is not None and hit[0] > now:
        return hit[1]
    notice = _load()
    seconds = getattr(settings, "PRIVACY_NOTICE_CACHE_SECONDS", PROCESS_CACHE_SECONDS)
    if seconds > 0:
        with _cache_lock:
            _cache["current"] = (now + seconds, notice)
    return notice


def privacy_forget(**_kwargs) -> None:
    with _cache_lock:
        _cache.clear()


def privacy_reload(**_kwargs) -> None:
    """A consent text was saved: read the current notice now, so that this process asks for
    a new version at once and the next applicant request pays no query for it."""
    privacy_forget()
    privacy_current()


def privacy_required(applicant: Applicant) -> Notice | None:
    """The notice the applicant still has to acknowledge, or None."""
    notice = privacy_current()
    if notice is None or applicant.privacy_version >= notice.version:
        return None
    return notice


def privacy_required_known(applicant: Applicant) -> bool | None:
    """Whether the applicant still has to acknowledge a notice, from this process's memory
    only: None when the current notice is not remembered (answering would need a query),
    for callers that cannot query here (the confirm route, on the event loop)."""
    with _cache_lock:
        hit = _cache.get("current")
    if hit is None or hit[0] <= time.monotonic():
        return None
    return hit[1] is not None and applicant.privacy_version < hit[1].version


def privacy_gate(applicant: Applicant) -> None:
    if privacy_required(applicant) is not None:
        raise PrivacyNoticeRequired()


def privacy_acknowledge(
    *, applicant: Applicant, version: int, ctx: RequestContext, now: datetime
) -> Applicant:
    """The applicant read and accepted `version`, which must be the current one
    (`consent_outdated` otherwise, e.g. a page left open across a new version;
    `consent_missing` when no notice is configured). Acknowledging again is a no-op."""
    privacy_forget()  # a new version saved by another process must be seen here
    notice = privacy_current()
    if notice is None:
        raise NotAllowed("consent_missing", "条款未配置，请联系工作人员")
    if version != notice.version:
        raise Conflict("consent_outdated", f"《{notice.title}》已更新，请刷新后重新阅读")
    with transaction.atomic():
        locked = lock_first(Applicant.objects.filter(pk=applicant.pk))
        if locked.privacy_version >= notice.version:
            return locked
        PrivacyAcknowledgement.objects.create(
            applicant=locked,
            version=notice.version,
            text_sha256=notice.sha256,
            at=now,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        locked.privacy_version = notice.version
        locked._change_reason = f"确认《{notice.title}》第 {notice.version} 版"
        locked.save(update_fields=["privacy_version"])
    applicant.privacy_version = notice.version
    return locked


def _request_applicant(request) -> Applicant | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if User.applicant.related.is_cached(user):
        cached = User.applicant.related.get_cached_value(user)
        return cached if isinstance(cached, Applicant) else None
    return Applicant.objects.filter(user=user).first()


class PrivacyNoticeMiddleware:
    """Sends a logged-in applicant's page requests to the notice until it is acknowledged."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        if (
            request.method in ("GET", "HEAD")
            and path.startswith("/h5/")
            and not path.startswith(OPEN_PAGES)
            and not path.startswith(settings.STATIC_URL)
        ):
            applicant = _request_applicant(request)
            if applicant is not None and privacy_required(applicant) is not None:
                return HttpResponseRedirect(f"{NOTICE_PATH}?next={quote(request.get_full_path())}")
        return self.get_response(request)
