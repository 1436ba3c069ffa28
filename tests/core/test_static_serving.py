"""Static files: nginx serves them in production, so the HTTP processes carry no static-file
middleware there; the demo (DEBUG, no nginx) serves them itself (config/settings.py
SERVE_STATIC)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"


def _middleware(tmp_path, **env: str) -> list[str]:
    """MIDDLEWARE as a fresh process (daphne, manage.py) reads it with this environment."""
    key = tmp_path / "ledger.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SITE_URL", "ALLOWED_", "SERVE_STATIC", "ANJU_LEDGER"))
    }
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ANJU_VAR_DIR": str(tmp_path / "var"),
            "SECRET_KEY": "static-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "SITE_URL": "https://anju.example.gov.cn",
            "ALLOWED_HOSTS": "anju.example.gov.cn",
            "ANJU_LEDGER_SIGNING_KEY_FILE": str(key),
            "ANJU_FIELD_ENCRYPTION_KEYS": "11" * 32,
            "ANJU_PII_SEARCH_HASH_KEY": "22" * 32,
            **env,
        }
    )
    code = "from django.conf import settings; print('\\n'.join(settings.MIDDLEWARE))"
    result = subprocess.run(  # noqa: S603 (fixed command)
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_production_processes_have_no_static_file_middleware(tmp_path):
    assert WHITENOISE not in _middleware(tmp_path, DEBUG="0")


def test_serve_static_turns_it_on_without_debug(tmp_path):
    # Control: the same start with SERVE_STATIC=1 does carry it, so the test above sees the
    # setting and not a process that never had it.
    assert WHITENOISE in _middleware(tmp_path, DEBUG="0", SERVE_STATIC="1")


def test_the_demo_serves_static_files_itself(tmp_path, client):
    assert WHITENOISE in _middleware(tmp_path, DEBUG="1")
    # In this process (the suite runs with DEBUG=1, as the demo does):
    assert WHITENOISE in settings.MIDDLEWARE
    response = client.get("/static/h5/app.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (ROOT / "h5/static/h5/app.css").read_bytes()
