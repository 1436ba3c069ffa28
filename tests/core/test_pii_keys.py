"""The personal-data keys (config/settings.py `_hex_keys`, core/pii.py): required with DEBUG
off, with a message naming them; malformed keys refused; the file form read; generated once
under var/ in development."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = "ab" * 32
CODE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(len(settings.FIELD_ENCRYPTION_KEYS), settings.PII_SEARCH_HASH_KEY[:4])"
)


def _start(tmp_path, **env: str | None) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SITE_URL", "ALLOWED_", "ANJU_FIELD_", "ANJU_PII_"))
    }
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ANJU_VAR_DIR": str(tmp_path / "var"),
            "DEBUG": "0",
            "SECRET_KEY": "pii-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "ANJU_LEDGER_SIGNING_KEY": settings.LEDGER_SIGNING_KEY,
            "SITE_URL": "https://anju.example.gov.cn",
            "ALLOWED_HOSTS": "anju.example.gov.cn",
            "ANJU_FIELD_ENCRYPTION_KEYS": GOOD,
            "ANJU_PII_SEARCH_HASH_KEY": GOOD,
            **env,
        }
    )
    clean = {k: v for k, v in clean.items() if v is not None}
    return subprocess.run(  # noqa: S603 (fixed command)
        [sys.executable, "-c", CODE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANJU_FIELD_ENCRYPTION_KEYS": None}, "ANJU_FIELD_ENCRYPTION_KEYS or "),
        ({"ANJU_PII_SEARCH_HASH_KEY": None}, "ANJU_PII_SEARCH_HASH_KEY or "),
        ({"ANJU_FIELD_ENCRYPTION_KEYS": "abcd"}, "each key must be 64 hex digits"),
        ({"ANJU_FIELD_ENCRYPTION_KEYS": "zz" * 32}, "each key must be 64 hex digits"),
        ({"ANJU_PII_SEARCH_HASH_KEY": f"{GOOD},{GOOD}"}, "exactly one key"),
        (
            {"ANJU_FIELD_ENCRYPTION_KEYS": None, "ANJU_FIELD_ENCRYPTION_KEYS_FILE": "/nonexistent"},
            "ANJU_FIELD_ENCRYPTION_KEYS_FILE",
        ),
    ],
)
def test_production_refuses_to_start_without_usable_keys(tmp_path, env, message):
    result = _start(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
    assert not (tmp_path / "var" / "field_encryption_keys").exists()  # never generated


def test_production_reads_a_key_list_and_the_file_form(tmp_path):
    listed = _start(tmp_path, ANJU_FIELD_ENCRYPTION_KEYS=f"{GOOD},{'cd' * 32}")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert listed.stdout.split() == ["2", "abab"]
    keys = tmp_path / "keys"
    keys.write_text(f"{'cd' * 32}\n{GOOD}\n")
    filed = _start(
        tmp_path, ANJU_FIELD_ENCRYPTION_KEYS=None, ANJU_FIELD_ENCRYPTION_KEYS_FILE=str(keys)
    )
    assert filed.returncode == 0, filed.stderr[-2000:]
    assert filed.stdout.split() == ["2", "abab"]


def test_development_generates_the_keys_once_under_var(tmp_path):
    env = {"DEBUG": "1", "ANJU_FIELD_ENCRYPTION_KEYS": None, "ANJU_PII_SEARCH_HASH_KEY": None}
    first = _start(tmp_path, **env)
    assert first.returncode == 0, first.stderr[-2000:]
    stored = (tmp_path / "var" / "field_encryption_keys").read_text()
    assert len(bytes.fromhex(stored.strip())) == 32
    assert (tmp_path / "var" / "field_encryption_keys").stat().st_mode & 0o077 == 0
    again = _start(tmp_path, **env)
    assert again.stdout == first.stdout
    assert (tmp_path / "var" / "field_encryption_keys").read_text() == stored
