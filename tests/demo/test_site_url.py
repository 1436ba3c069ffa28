"""SITE_URL: one setting for every absolute URL (core/urls.py), refused at startup when it
cannot be right in production, and derived by the Makefile from where `make demo` serves."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from core.urls import (
    DEBUG_DEFAULT,
    SiteUrlError,
    absolute_url,
    host_allowed,
    site_host,
    site_url_parse,
)

ROOT = Path(__file__).resolve().parents[2]


# -- the helper -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://anju.example.gov.cn", "https://anju.example.gov.cn"),
        ("https://anju.example.gov.cn/", "https://anju.example.gov.cn"),
        ("  HTTPS://Anju.Example.gov.cn:8443  ", "https://anju.example.gov.cn:8443"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_a_good_origin_is_kept_without_trailing_slash(value, expected):
    assert site_url_parse(value, debug=False) == expected


def test_debug_defaults_to_the_quick_start_and_accepts_http():
    assert site_url_parse(None, debug=True) == DEBUG_DEFAULT == "http://127.0.0.1:8000"
    assert site_url_parse("", debug=True) == DEBUG_DEFAULT
    assert site_url_parse("http://127.0.0.1:8101", debug=True) == "http://127.0.0.1:8101"


@pytest.mark.parametrize(
    ("value", "debug", "message"),
    [
        (None, False, "SITE_URL is required when DEBUG is off"),
        ("   ", False, "SITE_URL is required when DEBUG is off"),
        ("anju.example.gov.cn", False, "not an absolute http(s) URL"),
        ("//anju.example.gov.cn", False, "not an absolute http(s) URL"),
        ("ftp://anju.example.gov.cn", True, "not an absolute http(s) URL"),
        ("https://:8443", False, "has no host name"),
        ("https://user:pw@anju.example.gov.cn", False, "user name or password"),
        ("https://anju.example.gov.cn:99999", False, "invalid port"),
        ("https://anju.example.gov.cn/anju", False, "origin only"),
        ("https://anju.example.gov.cn/?a=1", False, "origin only"),
        ("https://anju.example.gov.cn#top", False, "origin only"),
        ("https://anju.example.gov.cn?", True, "origin only"),
        ("https://anju example.gov.cn", True, "whitespace"),
        ("http://anju.example.gov.cn", False, "SITE_URL_ALLOW_HTTP=1"),
    ],
)
def test_a_bad_site_url_is_refused_with_the_reason(value, debug, message):
    with pytest.raises(SiteUrlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        site_url_parse(value, debug=debug)


def test_http_in_production_only_with_the_explicit_opt_in():
    assert site_url_parse("http://10.0.0.5", debug=False, allow_http=True) == "http://10.0.0.5"


def test_site_host_is_the_allowed_hosts_form():
    assert site_host("https://anju.example.gov.cn:8443") == "anju.example.gov.cn"
    assert site_host("http://[::1]:8000") == "[::1]"


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("anju.example.gov.cn", ["anju.example.gov.cn"], True),
        ("ANJU.example.gov.cn", ["anju.example.gov.cn"], True),
        ("anju.example.gov.cn", [".example.gov.cn"], True),
        ("example.gov.cn", [".example.gov.cn"], True),
        ("anju.example.gov.cn", ["*"], True),
        ("anju.example.gov.cn", ["other.example.gov.cn"], False),
        ("evil-example.gov.cn", [".example.gov.cn"], False),
        ("anju.example.gov.cn", [], False),
    ],
)
def test_host_allowed_follows_djangos_rules(host, allowed, expected):
    assert host_allowed(host, allowed) is expected


def test_absolute_url_is_site_url_plus_the_path(settings):
    settings.SITE_URL = "http://127.0.0.1:8101"
    assert absolute_url("/s/abc") == "http://127.0.0.1:8101/s/abc"
    assert absolute_url("/") == "http://127.0.0.1:8101/"
    for bad in ("s/abc", "//evil.example/x", "https://evil.example/x"):
        with pytest.raises(ValueError):
            absolute_url(bad)


@pytest.mark.django_db
def test_the_demo_banner_prints_site_urls_links(settings):
    from selection.demo import demo_data_load

    demo_data_load()
    settings.SITE_URL = "http://192.168.1.5:8101"
    out = io.StringIO()
    call_command("demo_banner", "--host", "0.0.0.0", "--port", "8101", stdout=out)
    text = out.getvalue()
    assert "http://192.168.1.5:8101/h5/login/" in text
    assert "http://192.168.1.5:8101/dev/sms/" in text
    assert "listening on 0.0.0.0:8101; links use SITE_URL=http://192.168.1.5:8101" in text
    assert "0.0.0.0:8101/" not in text and ":8000" not in text


# -- settings at startup (a fresh interpreter, as daphne or manage.py would start) ------------


def _setup(tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SITE_URL", "ALLOWED_"))}
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ANJU_VAR_DIR": str(tmp_path / "var"),
            "DEBUG": "0",
            "SECRET_KEY": "startup-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "ANJU_LEDGER_SIGNING_KEY": settings.LEDGER_SIGNING_KEY,
            "ANJU_FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "ANJU_PII_SEARCH_HASH_KEY": settings.PII_SEARCH_HASH_KEY,
            "ALLOWED_HOSTS": "anju.example.gov.cn",
            **env,
        }
    )
    clean = {k: v for k, v in clean.items() if v is not None}
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"
    )
    return subprocess.run(  # noqa: S603 (fixed command)
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SITE_URL is required when DEBUG is off"),
        ({"SITE_URL": ""}, "SITE_URL is required when DEBUG is off"),
        ({"SITE_URL": "anju.example.gov.cn"}, "is not an absolute http(s) URL"),
        ({"SITE_URL": "https://anju.example.gov.cn/anju/"}, "must be an origin only"),
        ({"SITE_URL": "http://anju.example.gov.cn"}, "SITE_URL_ALLOW_HTTP=1"),
        ({"SITE_URL": "https://other.example.gov.cn"}, "add it to ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_without_a_usable_site_url(tmp_path, env, message):
    result = _setup(tmp_path, **env)
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ANJU_LEDGER_SIGNING_KEY": None},
            "ANJU_LEDGER_SIGNING_KEY or ANJU_LEDGER_SIGNING_KEY_FILE",
        ),
        ({"ANJU_LEDGER_SIGNING_KEY": "not a key"}, "not an unencrypted Ed25519 private key"),
        (
            {"ANJU_LEDGER_SIGNING_KEY": None, "ANJU_LEDGER_SIGNING_KEY_FILE": "/nonexistent.pem"},
            "ANJU_LEDGER_SIGNING_KEY_FILE",
        ),
    ],
)
def test_production_refuses_to_start_without_the_log_key(tmp_path, env, message):
    result = _setup(tmp_path, SITE_URL="https://anju.example.gov.cn/", **env)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr[-2000:]


def test_production_reads_the_log_key_from_a_file(tmp_path):
    key = tmp_path / "ledger.pem"
    key.write_text(settings.LEDGER_SIGNING_KEY)
    result = _setup(
        tmp_path,
        SITE_URL="https://anju.example.gov.cn/",
        ANJU_LEDGER_SIGNING_KEY=None,
        ANJU_LEDGER_SIGNING_KEY_FILE=str(key),
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_production_starts_with_a_good_site_url(tmp_path):
    result = _setup(tmp_path, SITE_URL="https://anju.example.gov.cn/")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "https://anju.example.gov.cn"
    allowed = _setup(
        tmp_path, SITE_URL="http://10.0.0.5:8080", SITE_URL_ALLOW_HTTP="1", ALLOWED_HOSTS="10.0.0.5"
    )
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert allowed.stdout.strip() == "http://10.0.0.5:8080"


def test_manage_py_check_deploy_hits_the_same_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITE_URL", "ALLOWED_"))}
    env.update(DEBUG="0", SECRET_KEY="x" * 60, ANJU_VAR_DIR=str(tmp_path / "var"))
    env["ANJU_LEDGER_SIGNING_KEY"] = settings.LEDGER_SIGNING_KEY
    env["ANJU_FIELD_ENCRYPTION_KEYS"] = ",".join(settings.FIELD_ENCRYPTION_KEYS)
    env["ANJU_PII_SEARCH_HASH_KEY"] = settings.PII_SEARCH_HASH_KEY
    result = subprocess.run(  # noqa: S603 (fixed command)
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SITE_URL is required when DEBUG is off" in result.stderr


def test_debug_serves_the_site_urls_host_and_defaults_to_port_8000(tmp_path):
    result = _setup(tmp_path, DEBUG="1", ALLOWED_HOSTS=None)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "http://127.0.0.1:8000"
    code = "import django; django.setup(); from django.conf import settings; print(settings.ALLOWED_HOSTS)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITE_URL", "ALLOWED_"))}
    env.update(DEBUG="1", SITE_URL="http://192.168.1.5:8101", ANJU_VAR_DIR=str(tmp_path / "v"))
    shown = subprocess.run(  # noqa: S603 (fixed command)
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "'192.168.1.5'" in shown.stdout and "'127.0.0.1'" in shown.stdout


# -- the Makefile: SITE_URL from HOST and PORT unless set ------------------------------------


def make_demo_commands(*args: str, env: dict | None = None) -> list[str]:
    """The commands `make demo` would run (make -n), with the given arguments."""
    base = {k: v for k, v in os.environ.items() if k != "SITE_URL"}
    result = subprocess.run(  # noqa: S603 (fixed command)
        ["make", "-n", "--no-print-directory", "demo", *args],  # noqa: S607 (make on PATH)
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if "manage.py" in line or "daphne" in line]


@pytest.mark.parametrize(
    ("args", "env", "site_url"),
    [
        (["HOST=127.0.0.1", "PORT=8101"], {}, "http://127.0.0.1:8101"),
        ([], {}, "http://127.0.0.1:8000"),
        (["HOST=192.168.1.5", "PORT=9000"], {}, "http://192.168.1.5:9000"),
        (["HOST=0.0.0.0", "PORT=8101"], {}, "http://127.0.0.1:8101"),
        (["HOST=::1", "PORT=8101"], {}, "http://[::1]:8101"),
        (["PORT=8101"], {"SITE_URL": "https://demo.example.org"}, "https://demo.example.org"),
        (["PORT=8101", "SITE_URL=http://10.0.0.9:8101"], {}, "http://10.0.0.9:8101"),
        (["PORT=8101"], {"SITE_URL": ""}, "http://127.0.0.1:8101"),
    ],
)
def test_make_demo_passes_site_url_to_every_step(args, env, site_url):
    commands = make_demo_commands(*args, env=env)
    steps = ["manage.py migrate", "manage.py demo_load", "manage.py demo_banner", "bin/daphne"]
    assert [next(c for c in commands if step in c) for step in steps]  # each step is there
    for step in steps:
        line = next(c for c in commands if step in c)
        assert line.startswith(f"SITE_URL='{site_url}' "), line
