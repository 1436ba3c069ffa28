"""The production guard (core/checks.py): `manage.py check --deploy` fails with DEBUG off and
any development provider, the development CA or TSA, or a development key; passes without."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.checks import Error
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.utils import timezone

from core.checks import DEV_CA_MARKER, production_guard

ROOT = Path(__file__).resolve().parents[2]


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "某市住房保障机构"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _production_ca(directory: Path) -> Path:
    """A CA directory as an organisation would install it: its own root and TSA."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("某市住房保障机构根证书"))
        .issuer_name(_name("某市住房保障机构根证书"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name("时间戳服务"))
        .issuer_name(root.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    for name, cert in (("root", root), ("tsa", tsa)):
        (directory / f"{name}.crt.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory


def _ledger_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.fixture
def production(tmp_path):
    """Settings of a production deployment: DEBUG off, the vendors' providers, the
    organisation's CA, keys of its own; no development part anywhere."""
    var = tmp_path / "var"
    var.mkdir()
    values = {
        "DEBUG": False,
        "VAR_DIR": var,
        "BASE_DIR": tmp_path,
        "SECRET_KEY": "x" * 60,
        "LEDGER_SIGNING_KEY": _ledger_pem(),
        "SMS": {**settings.SMS, "PROVIDER": "tencent"},
        "FACE": {**settings.FACE, "PROVIDER": "tencent"},
        "PAYMENT": {
            **settings.PAYMENT,
            "PROVIDER": "wechatpay",
            "MCHID": "1230000109",
            "APPID": "wxd678efh567hg6787",
            "API_V3_KEY": "k" * 32,
        },
        "SIGNING": {
            **settings.SIGNING,
            "CA_DIR": _production_ca(tmp_path / "ca"),
            "DEV_CA_AUTOCREATE": False,
        },
        "BENCH_FLOOR_VIEWS": False,
    }
    with override_settings(**values):
        yield values


def _ids(errors: list[Error]) -> list[str]:
    return [error.id for error in errors]


def test_production_settings_pass(production):
    assert production_guard() == []
    call_command("check", "--deploy")  # raises SystemCheckError on any error


@pytest.mark.parametrize(
    ("block", "dev_name", "check_id", "words"),
    [
        ("SMS", "console", "anju.E001", "SMS provider 'console' is a development provider"),
        ("FACE", "dev", "anju.E002", "FACE provider 'dev' is a development provider"),
        ("PAYMENT", "dev", "anju.E003", "PAYMENT provider 'dev' is a development provider"),
    ],
)
def test_each_development_provider_fails_check_deploy(production, block, dev_name, check_id, words):
    with override_settings(**{block: {**production[block], "PROVIDER": dev_name}}):
        assert _ids(production_guard()) == [check_id]
        with pytest.raises(SystemCheckError, match=words):
            call_command("check", "--deploy")


def test_debug_on_reports_nothing_even_with_development_parts(production):
    with override_settings(DEBUG=True, SMS={**production["SMS"], "PROVIDER": "console"}):
        assert production_guard() == []


def test_development_ca_and_tsa_fail(production, tmp_path):
    from signing.agreements.ca import dev_ca_ensure

    dev_dir = tmp_path / "dev-ca"
    dev_ca_ensure(now=timezone.now(), directory=dev_dir)
    root = x509.load_pem_x509_certificate((dev_dir / "root.crt.pem").read_bytes())
    assert DEV_CA_MARKER in root.subject.rfc4514_string()  # the marker names the dev root
    with override_settings(SIGNING={**production["SIGNING"], "CA_DIR": dev_dir}):
        errors = production_guard()
        assert _ids(errors) == ["anju.E012", "anju.E013"]
        with pytest.raises(SystemCheckError, match="is the development CA"):
            call_command("check", "--deploy")
    # The development TSA alone, beside the organisation's root, is caught too.
    (production["SIGNING"]["CA_DIR"] / "tsa.crt.pem").write_bytes(
        (dev_dir / "tsa.crt.pem").read_bytes()
    )
    assert _ids(production_guard()) == ["anju.E013"]


def test_dev_ca_autocreate_and_missing_ca_fail(production, tmp_path):
    with override_settings(SIGNING={**production["SIGNING"], "DEV_CA_AUTOCREATE": True}):
        assert _ids(production_guard()) == ["anju.E010"]
    with override_settings(SIGNING={**production["SIGNING"], "CA_DIR": tmp_path / "none"}):
        assert _ids(production_guard()) == ["anju.E011"]


def test_generated_development_keys_fail(production):
    var = production["VAR_DIR"]
    (var / "secret_key").write_text(production["SECRET_KEY"] + "\n")
    assert _ids(production_guard()) == ["anju.E020"]
    (var / "secret_key").write_text("another")
    (var / "ledger_ed25519.pem").write_text(production["LEDGER_SIGNING_KEY"])
    errors = production_guard()
    assert _ids(errors) == ["anju.E021"]
    (var / "ledger_ed25519.pem").write_text(_ledger_pem())  # a different key: not the demo's
    assert production_guard() == []


@pytest.mark.parametrize(
    ("setting", "file_name", "value"),
    [
        ("FIELD_ENCRYPTION_KEYS", "field_encryption_keys", ["ab" * 32, "cd" * 32]),
        ("PII_SEARCH_HASH_KEY", "pii_search_hash_key", "cd" * 32),
    ],
)
def test_generated_personal_data_keys_fail(production, setting, file_name, value):
    with override_settings(**{setting: value}):
        assert production_guard() == []
        (production["VAR_DIR"] / file_name).write_text("cd" * 32 + "\n")
        assert _ids(production_guard()) == ["anju.E025"]


@pytest.mark.parametrize(
    ("change", "check_id"),
    [
        ({"API_V3_KEY": ""}, "anju.E022"),
        ({"MCHID": "1900000001"}, "anju.E023"),
        ({"APPID": "wx_anju_dev"}, "anju.E023"),
    ],
)
def test_development_payment_keys_fail(production, change, check_id):
    with override_settings(PAYMENT={**production["PAYMENT"], **change}):
        assert _ids(production_guard()) == [check_id]


@pytest.mark.parametrize(
    ("block", "path", "url", "ok"),
    [
        ("SMS", ("TENCENT", "ENDPOINT"), "http://127.0.0.1:8765", False),
        ("SMS", ("TENCENT", "ENDPOINT"), "https://sms.tencentcloudapi.com", True),
        ("FACE", ("TENCENT", "ENDPOINT"), "https://localhost:9000", False),
        ("FACE", ("TENCENT", "ENDPOINT"), "https://faceid.tencentcloudapi.com", True),
        ("PAYMENT", ("ENDPOINT",), "https://[::1]:9443", False),
        ("PAYMENT", ("ENDPOINT",), "", True),
        ("PAYMENT", ("ENDPOINT",), "https://api.mch.weixin.qq.com", True),
    ],
)
def test_vendor_endpoints_on_this_machine_fail(production, block, path, url, ok):
    conf = {
        key: (dict(value) if isinstance(value, dict) else value)
        for key, value in production[block].items()
    }
    target = conf
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = url
    with override_settings(**{block: conf}):
        assert _ids(production_guard()) == ([] if ok else ["anju.E030"])


def test_a_local_oidc_issuer_fails(production, settings):
    with override_settings(OIDC={**settings.OIDC, "ISSUER": "http://127.0.0.1:9999"}):
        assert _ids(production_guard()) == ["anju.E031"]
    with override_settings(OIDC={**settings.OIDC, "ISSUER": "https://id.gd.gov.cn"}):
        assert production_guard() == []


def test_bench_floor_views_fail(production):
    with override_settings(BENCH_FLOOR_VIEWS=True):
        assert _ids(production_guard()) == ["anju.E024"]


def _manage_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (fixed command)
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_check_deploy_as_deploy_readme_runs_it(tmp_path):
    """The command the deploy docs run, in a fresh process with a production env file's
    settings: exit 1 naming the console SMS provider; exit 0 once the vendor's is set."""
    key_file = tmp_path / "ledger.pem"
    key_file.write_text(_ledger_pem())
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMS_", "FACE_", "PAYMENT_", "OIDC_", "ANJU_", "DEBUG"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY="s" * 60,
        ANJU_VAR_DIR=str(tmp_path / "var"),
        ANJU_LEDGER_SIGNING_KEY_FILE=str(key_file),
        ANJU_FIELD_ENCRYPTION_KEYS="11" * 32,
        ANJU_PII_SEARCH_HASH_KEY="22" * 32,
        ANJU_SIGNING_CA_DIR=str(_production_ca(tmp_path / "ca")),
        SITE_URL="https://anju.example.gov.cn",
        ALLOWED_HOSTS="anju.example.gov.cn",
        SMS_PROVIDER="console",
        FACE_PROVIDER="tencent",
        PAYMENT_PROVIDER="wechatpay",
        PAYMENT_MCHID="1230000109",
        PAYMENT_APPID="wxd678efh567hg6787",
        PAYMENT_API_V3_KEY="k" * 32,
    )
    failed = _manage_check(env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "anju.E001" in failed.stderr
    assert "SMS provider 'console' is a development provider and DEBUG is off" in failed.stderr
    assert "Set SMS_PROVIDER to the production provider" in failed.stderr

    passed = _manage_check({**env, "SMS_PROVIDER": "tencent"})
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "anju." not in passed.stdout + passed.stderr
