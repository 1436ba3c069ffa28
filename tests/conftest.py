"""Shared fixtures and the rule for missing services.

Tests that need a real PostgreSQL, Redis, Chromium or nginx are marked `postgres`, `redis`,
`browser` or `nginx`; those that run poppler's pdfsig/pdftotext/pdffonts and NSS's certutil
are marked `pdftools`. When the service is missing they skip with a line naming it; under
CI (CI=true) they fail instead, so a green CI run always exercised the real parts.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.factories import FamilyFactory  # noqa: F401  (import check: factories load)
from tests.fast_flush import install as install_fast_flush

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _own_redis() -> None:
    """Give this test process Redis of its own: under pytest-xdist (scripts/test.sh runs
    `-n 2`) worker gwN uses database N of ANJU_TEST_REDIS_DBS (a comma list; by default
    REDIS_URL's database, then the ones below it: 15, 14, ...), since the tests flush their
    database between tests. And a channel-layer prefix of its own, in every process:
    Redis pub/sub is server-wide, not per database, so two runs (two workers, or two runs on
    one machine) on the prefix "anju" would hear each other's events. The live servers the
    browser tests start inherit both through the environment."""
    if not settings.REDIS_URL:
        return
    from urllib.parse import urlsplit, urlunsplit

    from django.test import override_settings

    from config.settings import redis_host

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw"))
    parts = urlsplit(settings.REDIS_URL)
    base = int(parts.path.strip("/") or 0)
    dbs = os.environ.get("ANJU_TEST_REDIS_DBS") or ",".join(str(base - i) for i in range(16))
    db = int(dbs.split(",")[index])
    url = urlunsplit(parts._replace(path=f"/{db}"))
    prefix = f"anju-test{os.getpid()}"
    layers = {name: dict(layer) for name, layer in settings.CHANNEL_LAYERS.items()}
    for layer in layers.values():
        layer["CONFIG"] = {**layer["CONFIG"], "hosts": [redis_host(url)], "prefix": prefix}
    caches = {
        name: {**cache, "LOCATION": url, "KEY_PREFIX": prefix}
        for name, cache in settings.CACHES.items()
    }
    # override_settings sends setting_changed: Django's cache handler and channels' layer
    # manager drop anything they built from the old values. Never undone: it is this
    # process's configuration.
    override_settings(REDIS_URL=url, CHANNEL_LAYERS=layers, CACHES=caches).enable()
    os.environ.update(REDIS_URL=url, REDIS_PREFIX=prefix)


_own_redis()
install_fast_flush()  # transactional tests end in ~10 ms, not ~250 (tests/fast_flush.py)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
NGINX = os.environ.get("NGINX_PATH", "/usr/sbin/nginx")
PDF_TOOLS = ("pdfsig", "pdftotext", "pdffonts", "certutil")  # poppler-utils, libnss3-tools


def _redis_answers() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
        return True
    except redis.RedisError:
        return False


def _missing(item) -> str | None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if item.get_closest_marker("postgres") and "postgresql" not in engine:
        return "PostgreSQL (set DATABASE_URL to a PostgreSQL database)"
    if item.get_closest_marker("redis") and not _redis_answers():
        return f"Redis (REDIS_URL={settings.REDIS_URL or 'unset'} does not answer)"
    if item.get_closest_marker("browser") and not shutil.which(CHROMIUM):
        return f"Chromium at {CHROMIUM} (apt-get install chromium)"
    if item.get_closest_marker("nginx") and not shutil.which(NGINX):
        return f"nginx at {NGINX} (apt-get install nginx)"
    if item.get_closest_marker("pdftools"):
        absent = [tool for tool in PDF_TOOLS if not shutil.which(tool)]
        if absent:
            return f"{', '.join(absent)} (apt-get install poppler-utils libnss3-tools)"
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        missing = _missing(item)
        if missing is None:
            continue
        if CI:
            item.add_marker(
                pytest.mark.usefixtures("_fail_missing_service")
            )  # fail at setup with the reason
            item.user_properties.append(("missing", missing))
        else:
            item.add_marker(pytest.mark.skip(reason=f"needs {missing}"))


@pytest.fixture
def _fail_missing_service(request):
    missing = dict(request.node.user_properties).get("missing")
    pytest.fail(f"CI requires {missing}", pytrace=False)


FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's 1M iterations cost ~0.5 s a staff login; tests check permissions, not hashing.
    settings.PASSWORD_HASHERS = FAST_HASHERS


@pytest.fixture(scope="module")
def demo_data_once(django_db_setup, django_db_blocker):
    """selection.demo's data (`make demo`'s round, families and staff accounts), loaded once
    for a module instead of once per test (about a second each). It is loaded in a transaction
    left open for the module and rolled back after it; each test of the module runs inside
    it in a savepoint of its own (pytest-django's `db`, Django's TestCase), rolled back after
    the test, so every test starts from the same freshly loaded data as before. The module's
    tests that come after the first user see the data too. Only for modules whose tests are
    not transactional (those commit and flush)."""
    from django.db import transaction
    from django.test import override_settings

    from selection.demo import demo_data_load

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
            demo_data_load()
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _clean_cache():
    # Throttle counters live in the cache; every test starts from zero.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(db):
    """A round with 4 families in 2 sessions and 6 units (tests/worlds.py)."""
    from tests.worlds import make_world

    return make_world()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "real_second_factor: Client.force_login leaves staff without a verified second factor "
        "(tests of the staff two-factor login itself)",
    )


@pytest.fixture(autouse=True)
def _staff_logged_in_with_second_factor(request, monkeypatch):
    """The test client's `login` and `force_login` log a staff member in as the admin's login
    does when both factors are given: a confirmed TOTP device and the session verified by it
    (django-otp), since reviewers and supervisors reach no admin page without it
    (core/admin_site.py). Tests of the two-factor login itself are marked
    `real_second_factor`. Browser tests log in through the pages, code included
    (tests/browser/staff.py)."""
    if request.node.get_closest_marker("real_second_factor"):
        return
    from django.test.client import ClientMixin

    original = ClientMixin._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        if not getattr(user, "is_staff", False):
            return
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="测试", confirmed=True)
        session = self.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()

    monkeypatch.setattr(ClientMixin, "_login", _login)


@pytest.fixture(autouse=True)
def _privacy_notice_forgotten():
    # The current privacy notice is remembered per process (accounts/privacy.py); a test's
    # rolled-back consent texts must not be remembered into the next test.
    from accounts.privacy import privacy_forget

    privacy_forget()
    yield
    privacy_forget()
