"""Anju settings: one module, every knob read from the environment.

Each variable is documented in `.env.example`. The defaults give the embedded quick start:
SQLite under var/, the in-memory channel layer, the console SMS provider, DEBUG on.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.urls import SiteUrlError, host_allowed, site_host, site_url_parse

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ANJU_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    # Development: generate once and keep it under var/ so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()


def _ledger_signing_key() -> str:
    """The Ed25519 private key (PKCS#8 PEM) that signs the allocation log's tree heads and the
    agreements' evidence heads (core/logkey.py). Never stored in the database: a database
    rewrite cannot forge a head. Production: ANJU_LEDGER_SIGNING_KEY (the PEM text) or
    ANJU_LEDGER_SIGNING_KEY_FILE; development: generated once under var/."""
    key = os.environ.get("ANJU_LEDGER_SIGNING_KEY", "")
    path_name = os.environ.get("ANJU_LEDGER_SIGNING_KEY_FILE", "")
    if path_name and not key:
        try:
            key = Path(path_name).read_text()
        except OSError as exc:
            raise ImproperlyConfigured(f"ANJU_LEDGER_SIGNING_KEY_FILE: {exc}") from None
    if key:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            loaded = load_pem_private_key(key.encode(), password=None)
        except (ValueError, TypeError):
            loaded = None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ImproperlyConfigured(
                "The ledger signing key is not an unencrypted Ed25519 private key in PEM "
                "(openssl genpkey -algorithm ed25519)."
            )
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "ANJU_LEDGER_SIGNING_KEY or ANJU_LEDGER_SIGNING_KEY_FILE is required when DEBUG is "
            "off: the Ed25519 key that signs the allocation log (see docs/TRANSPARENCY.md)."
        )
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = VAR_DIR / "ledger_ed25519.pem"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:  # two processes starting at once: the first file wins
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
    return path.read_text()


LEDGER_SIGNING_KEY = _ledger_signing_key()


def _hex_keys(name: str, file_name: str, *, many: bool) -> list[str]:
    """Personal data's keys (core/pii.py): 32 random bytes each, as 64 hex digits. From
    ANJU_<name> (comma-separated when `many`) or ANJU_<name>_FILE (one per line); in
    development generated once under var/ like the log key; required when DEBUG is off."""
    text = os.environ.get(f"ANJU_{name}", "").replace(",", "\n")
    path_name = os.environ.get(f"ANJU_{name}_FILE", "")
    if path_name and not text:
        try:
            text = Path(path_name).read_text()
        except OSError as exc:
            raise ImproperlyConfigured(f"ANJU_{name}_FILE: {exc}") from None
    if not text:
        if not DEBUG:
            raise ImproperlyConfigured(
                f"ANJU_{name} or ANJU_{name}_FILE is required when DEBUG is off: the key"
                f"{'s' if many else ''} for personal data at rest (64 hex digits each, "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`; docs/RETENTION.md)."
            )
        path = VAR_DIR / file_name
        if not path.exists():
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            try:  # two processes starting at once: the first file wins
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32) + "\n")
        text = path.read_text()
    found = [line.strip() for line in text.splitlines() if line.strip()]
    for key in found:
        try:
            ok = len(bytes.fromhex(key)) == 32
        except ValueError:
            ok = False
        if not ok:
            raise ImproperlyConfigured(f"ANJU_{name}: each key must be 64 hex digits (32 bytes).")
    if not found or (len(found) > 1 and not many):
        raise ImproperlyConfigured(f"ANJU_{name}: {'at least' if many else 'exactly'} one key.")
    return found


# AES-256-GCM keys for ID numbers, bank account numbers and card photos at rest: the first
# encrypts, all decrypt (rotation: docs/DECISIONS.md "Personal data at rest",
# `manage.py pii_rotate_keys`). The search hash key makes the ID number's lookup column.
FIELD_ENCRYPTION_KEYS = _hex_keys("FIELD_ENCRYPTION_KEYS", "field_encryption_keys", many=True)
PII_SEARCH_HASH_KEY = _hex_keys("PII_SEARCH_HASH_KEY", "pii_search_hash_key", many=False)[0]
# The public origin of the site (scheme://host[:port]): every absolute URL the system makes
# (QR codes, SMS, the PDF's verification link, the face and payment providers' return,
# callback and notify URLs) is SITE_URL + path (core/urls.py `absolute_url`). Required when
# DEBUG is off, https unless SITE_URL_ALLOW_HTTP=1; with DEBUG on it defaults to
# http://127.0.0.1:8000 and `make demo` sets it from HOST and PORT.
try:
    SITE_URL = site_url_parse(
        os.environ.get("SITE_URL"), debug=DEBUG, allow_http=env_bool("SITE_URL_ALLOW_HTTP", False)
    )
except SiteUrlError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# With DEBUG on, the site's own host is served too (`make demo HOST=192.168.1.5`).
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", f"127.0.0.1,localhost,{site_host(SITE_URL)}" if DEBUG else ""
)
if not DEBUG and not host_allowed(site_host(SITE_URL), ALLOWED_HOSTS):
    # Provider callbacks and scanned QR codes would be refused with HTTP 400.
    raise ImproperlyConfigured(
        f"SITE_URL={SITE_URL} names host {site_host(SITE_URL)!r}, which ALLOWED_HOSTS "
        f"({','.join(ALLOWED_HOSTS) or 'empty'}) does not serve; add it to ALLOWED_HOSTS."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    # First, so that its templates (core/templates/admin) override the admin's: the production
    # guard's deploy checks (core/checks.py) and the staff admin's templates.
    "core.apps.CoreConfig",
    # django.contrib.admin with the staff site of core/admin_site.py (second factor).
    "core.apps.AnjuAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "simple_history",
    "accounts",
    "sms",
    "selection",
    "events",
    "signing",
    "mobile_api",
    "realtime",
    "h5",
    # Staff two-factor login (TOTP, core/admin_site.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
]

# Static files: nginx serves them in production (deploy/nginx/anju.conf, from collectstatic's
# STATIC_ROOT), so the HTTP processes do not look at every request's path for them. The demo
# (DEBUG, no nginx) serves them itself through WhiteNoise; SERVE_STATIC=1 does so without DEBUG.
SERVE_STATIC = env_bool("SERVE_STATIC", DEBUG)
MIDDLEWARE = [
    # First, so that it compresses what every other middleware has finished (core/compression.py).
    "core.compression.TextGZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (django-csp; CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    *(["whitenoise.middleware.WhiteNoiseMiddleware"] if SERVE_STATIC else []),
    # DEBUG only: an unknown URL gets the Chinese 404 page, not Django's technical one.
    "h5.error_views.NotFoundMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's AuthenticationMiddleware, taking the user from the session's one query
    # (accounts/sessions.py); then the one-active-device check, from the same query.
    "accounts.middleware.SessionAuthenticationMiddleware",
    "accounts.middleware.SingleDeviceMiddleware",
    # 《个人信息保护政策》: pages wait until the current version is acknowledged.
    "accounts.privacy.PrivacyNoticeMiddleware",
    # Field history (django-simple-history): who made each change, from the request.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # /admin/ only: django-otp's verified user and the idle timeout (core/admin_site.py).
    "core.admin_site.AdminSecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The framework-floor views of bench/confirm_http.py (mobile_api/floor.py): never in production.
BENCH_FLOOR_VIEWS = env_bool("ANJU_BENCH_FLOOR", False)

# Check every event payload against its schema (events/schemas.py) as it is recorded: on in
# development and in the test suite, off in production (where the check would only cost time).
EVENTS_CHECK_PAYLOADS = env_bool("EVENTS_CHECK_PAYLOADS", DEBUG)

# History is read-only in the admin: staff change service-owned fields through the services,
# so "revert to this version" (a direct write of every field) stays off.
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'anju.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
# Under ASGI each request runs in its own thread and so opens its own connection: a burst of
# N requests needs N connections (PostgreSQL refuses them past max_connections, 100 by
# default) and pays the connection setup on every request. Django's psycopg pool bounds and
# reuses them (requires the psycopg[pool] extra); DATABASE_CONN_MAX_AGE must then stay 0.
# Under daphne, DATABASE_CONN_MAX_AGE > 0 does not reuse anything: the connection belongs to
# the request's thread, which ends with the request, so every request leaves one open
# connection behind until max_connections is reached (bench/confirm_http.py --conn-max-age 60).
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0)
if DATABASE_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env_int("DATABASE_POOL_MIN_SIZE", 2), DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        # Seconds a request waits for a free connection before it fails.
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_SERVER_SIDE_BINDING", True
):
    # psycopg 3 server-side binding: a query and its parameters travel apart (PostgreSQL's
    # extended protocol), so psycopg can prepare a query that a connection runs again and
    # again: after DATABASE_PREPARE_THRESHOLD executions it is parsed and planned once and
    # then only executed (psycopg's automatic prepared statements, which Django leaves off by
    # default; "off" keeps them off). They live on a connection, so they pay off with the pool
    # (DATABASE_POOL_MAX_SIZE), which keeps connections across requests. A migration that
    # changes a table's columns invalidates them: restart the processes after migrating
    # (deploy/README.md does). docs/DECISIONS.md "Prepared statements".
    threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5").strip().lower()
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "server_side_binding": True,
            "prepare_threshold": None if threshold in ("", "off", "none") else int(threshold),
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves a few people trying the demo (docs/DECISIONS.md "SQLite is
    # the demo's database"). WAL lets readers run beside the one writer; IMMEDIATE takes the
    # write lock when a transaction begins, so two transactions that read and then write wait
    # for each other (up to the busy timeout, seconds) instead of one failing at once with
    # "database is locked" (SQLite cannot wait to upgrade a read lock held in a deferred one).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Longest wait for a row lock (core.locking, SET LOCAL lock_timeout); past it the request is
# refused with 503 `busy` and Retry-After instead of queueing without bound.
LOCK_TIMEOUT_MS = env_int("LOCK_TIMEOUT_MS", 3000)
# 确认正选 as one PostgreSQL function call (selection/migrations/0009) instead of a dozen ORM
# statements; off = the ORM version (always used on SQLite). Both are tested on every case.
SELECTION_CLAIM_SQL = env_bool("SELECTION_CLAIM_SQL", True)
# 确认正选's plain cases (a logged-in family's confirm that wins, or loses to a unit
# already taken) answered ahead of Django on the event loop (mobile_api/confirm_route.py):
# no thread hand-off, compiled queries on an async pool per process (core/adb.py). Every
# other case goes on to Django's view. PostgreSQL only; off = always Django.
CONFIRM_ROUTE = env_bool("CONFIRM_ROUTE", True)
ASYNC_DB_POOL_SIZE = env_int("ASYNC_DB_POOL_SIZE", 10)
ASYNC_DB_POOL_TIMEOUT = env_int("ASYNC_DB_POOL_TIMEOUT", 10)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# The embedded quick start runs the selection clock and the event relay
# inside the server process; production runs them as their own processes (deploy/).
WORKERS_IN_PROCESS = env_bool("ANJU_WORKERS_IN_PROCESS", False)
REALTIME_RELAY_IN_PROCESS = WORKERS_IN_PROCESS
# Deadline tasks the clock runs each tick besides selection's own, as dotted paths taking now=.
CLOCK_EXTRA_TASKS = [
    # Close unpaid deposit orders at the provider before the window's end voids their lease.
    "signing.lease.deposit.deposit_orders_close_due",
    "signing.agreements.services.agreements_void_due",
    # Refund the paid deposit of a voided or abandoned lease (signing/lease/deposit.py).
    "signing.lease.deposit.deposit_refunds_due",
    # The retention schedule, once a day from RETENTION_HOUR local time (docs/RETENTION.md).
    "signing.retention.retention_daily",
]
RETENTION_HOUR = env_int("ANJU_RETENTION_HOUR", 3)
# Seconds a process remembers the current privacy notice version (accounts/privacy.py); a new
# version reaches other processes within this time. 0 = read it on every applicant request.
PRIVACY_NOTICE_CACHE_SECONDS = env_int("ANJU_PRIVACY_NOTICE_CACHE_SECONDS", 30)

# Redis is optional for the embedded quick start; set REDIS_URL in production and tests.
REDIS_URL = os.environ.get("REDIS_URL", "")


def redis_host(url: str) -> dict:
    """Connection options for channels-redis, spelled out on purpose.

    redis-py 8 defaults to a 100-connection pool that raises instead of waiting and a 5 s
    socket timeout; under load the first turns websocket handshakes into HTTP 500s and the
    second kills idle consumers blocked on a read. A large pool, no read timeout on the
    long-lived receive, a bounded connect timeout and health checks keep consumers alive.
    """
    return {
        "address": url,
        "max_connections": env_int("REDIS_MAX_CONNECTIONS", 10_000),
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry_on_timeout": True,
    }


if REDIS_URL:
    # pubsub (default): Redis PUBLISH/SUBSCRIBE; with one subscription per stream per process
    # (realtime/hub.py, whose probe notices an outage) the fastest fan-out measured
    # (docs/BENCHMARKS.md). core: Redis lists with capacity and expiry.
    if os.environ.get("REALTIME_CHANNEL_LAYER", "pubsub") == "core":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [redis_host(REDIS_URL)],
                    "prefix": os.environ.get("REDIS_PREFIX", "anju"),
                    "capacity": 1500,
                    "expiry": 30,
                },
            }
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {
                    "hosts": [redis_host(REDIS_URL)],
                    "prefix": os.environ.get("REDIS_PREFIX", "anju"),
                },
            }
        }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("REDIS_PREFIX", "anju"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文")]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
# The project's own translations: strings of Django's admin that its zh_Hans lacks.
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "/static/"
# ANJU_STATIC_ROOT: another collected set (the browser tests collect one per run).
STATIC_ROOT = Path(os.environ.get("ANJU_STATIC_ROOT") or VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing root
# Front-end packages come from the npm registry (`npm ci` in the Makefile), never a CDN.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    ("vendor/weui", NODE_MODULES / "weui" / "dist" / "style"),
    ("vendor/signature_pad", NODE_MODULES / "signature_pad" / "dist"),
]
# Hashed, gzipped static files (issue 16 item 1; core/staticfiles.py): collectstatic writes
# name.<hash>.ext and its .gz; pages link the hashed names when STATIC_HASHED_URLS is on
# (production; `make demo` and the browser tests, which collect first), served as immutable
# for a year by WhiteNoise or nginx. Off with DEBUG unless ANJU_STATIC_HASHED=1: development
# serves the sources through the finders, never a stale collected copy.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "core.staticfiles.HashedStaticFilesStorage"},
}
STATIC_HASHED_URLS = env_bool("ANJU_STATIC_HASHED", not DEBUG)
# Development without hashed names serves static files straight from the finders and looks
# them up per request instead of indexing every file when the middleware starts. With hashed
# names the pages link only what collectstatic wrote: that set is indexed once at start.
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG and not STATIC_HASHED_URLS
MEDIA_ROOT = VAR_DIR / "private"  # never served by the web server; views check ownership

# Sessions: cookie-based auth for the H5 pages, CSRF and origin checks kept on. Django's
# database sessions, whose one query also loads the device session, user, applicant and family
# (accounts/sessions.py; docs/DECISIONS.md "One query for the login").
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_FAILURE_VIEW = "mobile_api.errors.csrf_failure"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
)
USE_X_FORWARDED_HOST = env_bool("BEHIND_PROXY", False)
# How many reverse proxies in front of daphne append to X-Forwarded-For (the shipped nginx: 1).
# The client's address is the entry that many from the right, set as REMOTE_ADDR by
# core/asgi.py ClientAddress; 0 (the demo, no proxy) takes the TCP peer and ignores the
# header. NUM_PROXIES is the older name of the same setting.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", env_int("NUM_PROXIES", 0))
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4) on every page, H5 and admin: scripts, styles, images,
# fonts and connections (fetch, the websockets: 'self' covers ws/wss of this host) only from
# the site itself; no inline script or style anywhere (the templates keep none; the browser
# tests fail on any violation Chromium reports). data: and blob: images: the admin's
# handwriting and 2FA QR images, the dev face page's local preview. Responses that set their
# own header (photos: "default-src 'none'; sandbox") keep it.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "media-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Staff admin: a session idle this long is logged out at its next request (core/admin_site.py).
ADMIN_IDLE_TIMEOUT_SECONDS = env_int("ADMIN_IDLE_TIMEOUT_SECONDS", 30 * 60)
# The name authenticator apps show beside a staff member's TOTP codes.
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "安居管理后台")
SECURE_CONTENT_TYPE_NOSNIFF = True
LOGIN_URL = "/h5/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["mobile_api.auth.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "mobile_api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "mobile_api.schema.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "login": os.environ.get("THROTTLE_LOGIN", "30/min"),
        "sms_send": os.environ.get("THROTTLE_SMS_SEND", "10/min"),
        # The payment webhook, per address: the provider's servers redeliver what we refuse.
        "payment_notify": os.environ.get("THROTTLE_PAYMENT_NOTIFY", "600/min"),
        # The face provider's callback, the same way.
        "face_callback": os.environ.get("THROTTLE_FACE_CALLBACK", "600/min"),
    },
    # REMOTE_ADDR is already the client (TRUSTED_PROXY_COUNT): throttles take it as it is.
    "NUM_PROXIES": 0,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "安居 Anju API",
    "DESCRIPTION": "网上选房与网上签约 — applicant API. Errors: "
    '{"error": {"code", "message", "fields"}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets of fields that share a name ("status") get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "AgreementStatusEnum": "signing.models.Agreement.Status",
        "SigningStatusEnum": "signing.selectors.SIGNING_STATUSES",
    },
}

# SMS: provider "console" (development) or "tencent" (Tencent Cloud SMS API 3.0).
SMS: dict[str, Any] = {
    "PROVIDER": os.environ.get("SMS_PROVIDER", "console"),
    "CODE_TTL_SECONDS": env_int("SMS_CODE_TTL_SECONDS", 300),
    "RESEND_COOLDOWN_SECONDS": env_int("SMS_RESEND_COOLDOWN_SECONDS", 60),
    "MAX_ATTEMPTS": env_int("SMS_MAX_ATTEMPTS", 5),
    "DAILY_CAP_PER_PHONE": env_int("SMS_DAILY_CAP_PER_PHONE", 10),
    "HOURLY_CAP_PER_IP": env_int("SMS_HOURLY_CAP_PER_IP", 30),
    "MAX_SEND_ATTEMPTS": env_int("SMS_MAX_SEND_ATTEMPTS", 6),
    "TENCENT": {
        "ENDPOINT": os.environ.get("SMS_TENCENT_ENDPOINT", "https://sms.tencentcloudapi.com"),
        "REGION": os.environ.get("SMS_TENCENT_REGION", "ap-guangzhou"),
        "SECRET_ID": os.environ.get("SMS_TENCENT_SECRET_ID", ""),
        "SECRET_KEY": os.environ.get("SMS_TENCENT_SECRET_KEY", ""),
        "SDK_APP_ID": os.environ.get("SMS_TENCENT_SDK_APP_ID", ""),
        "SIGN_NAME": os.environ.get("SMS_TENCENT_SIGN_NAME", ""),
        # Template ids per message kind, "kind=id,kind=id".
        "TEMPLATES": dict(
            item.split("=", 1) for item in env_list("SMS_TENCENT_TEMPLATES", "") if "=" in item
        ),
        "TIMEOUT_SECONDS": env_int("SMS_TENCENT_TIMEOUT_SECONDS", 5),
    },
}

# Face recognition: provider "dev" (a simulated provider page at /dev/face/ when DEBUG, with
# a signed server-to-server callback) or "tencent" (Tencent Cloud FaceID, API 3.0). A check
# passes when the provider passes it and its similarity score reaches PASS_SCORE.
FACE: dict[str, Any] = {
    "PROVIDER": os.environ.get("FACE_PROVIDER", "dev"),
    "PASS_SCORE": env_int("FACE_PASS_SCORE", 70),
    "MAX_STARTS_PER_ATTEMPT": env_int("FACE_MAX_STARTS_PER_ATTEMPT", 10),
    # Callbacks signed longer ago (or further ahead) than this are refused as stale.
    "CALLBACK_MAX_AGE_SECONDS": env_int("FACE_CALLBACK_MAX_AGE_SECONDS", 300),
    # Key of the development provider's callback signature; empty = derived from SECRET_KEY.
    "DEV_SECRET": os.environ.get("FACE_DEV_SECRET", ""),
    "TENCENT": {
        "ENDPOINT": os.environ.get("FACE_TENCENT_ENDPOINT", "https://faceid.tencentcloudapi.com"),
        "REGION": os.environ.get("FACE_TENCENT_REGION", ""),
        "SECRET_ID": os.environ.get("FACE_TENCENT_SECRET_ID", ""),
        "SECRET_KEY": os.environ.get("FACE_TENCENT_SECRET_KEY", ""),
        "RULE_ID": os.environ.get("FACE_TENCENT_RULE_ID", ""),
        "TIMEOUT_SECONDS": env_int("FACE_TENCENT_TIMEOUT_SECONDS", 5),
    },
}

# Identity: the development provider (ID number + SMS code) is always on; the OIDC adapter for
# the province's unified identity platform is on when OIDC_ISSUER is set.
OIDC: dict[str, Any] = {
    "ISSUER": os.environ.get("OIDC_ISSUER", ""),
    "CLIENT_ID": os.environ.get("OIDC_CLIENT_ID", ""),
    "CLIENT_SECRET": os.environ.get("OIDC_CLIENT_SECRET", ""),
    "SCOPES": os.environ.get("OIDC_SCOPES", "openid profile"),
    "ID_NUMBER_CLAIM": os.environ.get("OIDC_ID_NUMBER_CLAIM", "id_card_no"),
    "NAME_CLAIM": os.environ.get("OIDC_NAME_CLAIM", "name"),
    "TIMEOUT_SECONDS": env_int("OIDC_TIMEOUT_SECONDS", 5),
    # Fixed callback URL registered with the platform; empty = built from the request.
    "REDIRECT_URI": os.environ.get("OIDC_REDIRECT_URI", ""),
}
DEV_LOGIN_ENABLED = env_bool("DEV_LOGIN_ENABLED", True)

# E-signing PDFs (signing/agreements/pdf.py, signing/agreements/ca.py): the CA directory holds the organisation's CA,
# seal and time-stamping certificates and keys (0600); `manage.py signing_dev_ca` creates a
# development set. DEV_CA_AUTOCREATE creates it on first use (development and tests only).
SIGNING: dict[str, Any] = {
    "CA_DIR": Path(os.environ.get("ANJU_SIGNING_CA_DIR", VAR_DIR / "ca")),
    "FONT_PATH": os.environ.get(
        "ANJU_SIGNING_FONT_PATH", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    ),
    "ORG_NAME": os.environ.get("ANJU_SIGNING_ORG_NAME", "深圳市住房保障机构（演示）"),
    "DEV_CA_AUTOCREATE": env_bool("ANJU_SIGNING_DEV_CA_AUTOCREATE", DEBUG),
    # How long a desktop's QR code (and the phone's signing session it starts) lives, by
    # purpose; never past the signing window. The desktop issues a new code when one runs
    # out (docs/DECISIONS.md "QR tickets and signing sessions").
    "QR_TTL_SECONDS": {
        "sign": env_int("ANJU_QR_TTL_SIGN", 30 * 60),
        "face": env_int("ANJU_QR_TTL_FACE", 15 * 60),
        "deposit": env_int("ANJU_QR_TTL_DEPOSIT", 15 * 60),
    },
    # 咨询电话 and 咨询时间 (guide 001) where an agreement template leaves them blank
    # (signing/agreements/consult.py); numbers separated by 、
    "CONSULT_PHONES": os.environ.get("ANJU_SIGNING_CONSULT_PHONES", "0755-23619344、0755-82559564"),
    "CONSULT_HOURS": os.environ.get("ANJU_SIGNING_CONSULT_HOURS", "工作日 9:00-12:00，14:00-18:00"),
}

# Bank-card photos (signing/lease/card_photos.py): checked, then re-encoded as JPEG without metadata.
UPLOADS: dict[str, Any] = {
    "MAX_BYTES": env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024),
    "MAX_PIXELS": env_int("UPLOAD_MAX_PIXELS", 40_000_000),
    "MIN_SIDE": env_int("UPLOAD_MIN_SIDE", 200),
    "MAX_OUTPUT_SIDE": env_int("UPLOAD_MAX_OUTPUT_SIDE", 2000),
}
# A card photo travels in a multipart body: let Django read bodies of that size.
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOADS["MAX_BYTES"] + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOADS["MAX_BYTES"] + 1024 * 1024
# The largest request body the server reads at all (core/asgi.py BodyLimit, before Django):
# the largest legitimate upload, a card photo with its multipart framing. Larger bodies are
# answered 413 `request_too_large`; nginx's client_max_body_size refuses them first.
REQUEST_BODY_MAX_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE

# The lease deposit (signing/lease/deposit.py, signing/lease/payments/): provider "dev" is a WeChat Pay
# APIv3-shaped simulation (a cashier page at /dev/pay/ when DEBUG, notifications signed with
# its platform key and encrypted with the APIv3 key, as WeChat Pay does).
PAYMENT: dict[str, Any] = {
    "PROVIDER": os.environ.get("PAYMENT_PROVIDER", "dev"),
    "MCHID": os.environ.get("PAYMENT_MCHID", "1900000001"),
    "APPID": os.environ.get("PAYMENT_APPID", "wx_anju_dev"),
    "MERCHANT_NAME": os.environ.get("PAYMENT_MERCHANT_NAME", "深圳市住房保障机构（演示）"),
    # Empty = derived from SECRET_KEY (development only).
    "API_V3_KEY": os.environ.get("PAYMENT_API_V3_KEY", ""),
    "PLATFORM_KEY_DIR": Path(os.environ.get("PAYMENT_PLATFORM_KEY_DIR", VAR_DIR / "pay")),
    "NOTIFY_MAX_AGE_SECONDS": env_int("PAYMENT_NOTIFY_MAX_AGE_SECONDS", 300),
    # WeChat Pay v3 (provider "wechatpay", signing/lease/payments/wechatpay.py, on wechatpayv3).
    # ENDPOINT: empty = https://api.mch.weixin.qq.com ("dev": its in-process fake server).
    "ENDPOINT": os.environ.get("PAYMENT_ENDPOINT", ""),
    "MERCHANT_KEY_FILE": os.environ.get("PAYMENT_MERCHANT_KEY_FILE", ""),
    "MERCHANT_SERIAL": os.environ.get("PAYMENT_MERCHANT_SERIAL", ""),
    # Platform certificate mode (downloaded into this directory) or public key mode.
    "PLATFORM_CERT_DIR": os.environ.get("PAYMENT_PLATFORM_CERT_DIR", ""),
    "PLATFORM_PUBLIC_KEY_FILE": os.environ.get("PAYMENT_PLATFORM_PUBLIC_KEY_FILE", ""),
    "PLATFORM_PUBLIC_KEY_ID": os.environ.get("PAYMENT_PLATFORM_PUBLIC_KEY_ID", ""),
    "TIMEOUT_SECONDS": env_int("PAYMENT_TIMEOUT_SECONDS", 10),
    # The development provider's fake WeChat Pay server: its port (0 = any free one) and
    # whether it settles refunds by itself a moment after they are asked for.
    "DEV_SERVER_PORT": env_int("PAYMENT_DEV_SERVER_PORT", 0),
    "DEV_REFUND_AUTO_SETTLE": os.environ.get("PAYMENT_DEV_REFUND_AUTO_SETTLE", "1") == "1",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
