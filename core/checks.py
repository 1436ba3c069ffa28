"""The production guard: Django system checks (tag `anju`, deploy only) that make
`manage.py check --deploy` fail when DEBUG is off and a development part is configured.

Development parts are the providers that only simulate a vendor (console SMS, the dev face
page, the dev payment cashier), the development CA and its time-stamping authority (made by
`signing_dev_ca` or on first use), and keys a development run generated under var/ (the
session secret, the allocation log's signing key) or derives from SECRET_KEY. Each is an
Error (`anju.E0xx`), so `check --deploy` exits non-zero with the message; Django's own deploy
checks stay warnings. With DEBUG on nothing is reported: the demo runs on exactly these parts.

deploy/README.md runs `check --deploy` before the first start, the compose `migrate` service
runs it on every `up`, and the systemd daphne unit runs it before each start (ExecStartPre).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, register

# settings block -> (env variable, provider names that only exist for development)
DEVELOPMENT_PROVIDERS: dict[str, tuple[str, frozenset[str]]] = {
    "SMS": ("SMS_PROVIDER", frozenset({"console"})),
    "FACE": ("FACE_PROVIDER", frozenset({"dev"})),
    "PAYMENT": ("PAYMENT_PROVIDER", frozenset({"dev"})),
}
# The development CA's root names itself so (signing/agreements/ca.py `_root_create`);
# tests/core/test_deploy_checks.py keeps this marker and that name together.
DEV_CA_MARKER = "仅限开发"
# Keys of personal data at rest a development run generates under var/ (config/settings.py).
PII_KEY_FILES = {
    "FIELD_ENCRYPTION_KEYS": "field_encryption_keys",
    "PII_SEARCH_HASH_KEY": "pii_search_hash_key",
}
# The development payment merchant (config/settings.py defaults).
DEV_PAYMENT_MCHID = "1900000001"
DEV_PAYMENT_APPID = "wx_anju_dev"


def _var_dirs() -> list[Path]:
    """Where a development run writes its generated keys: VAR_DIR and the checkout's var/."""
    dirs = [Path(settings.VAR_DIR), Path(settings.BASE_DIR) / "var"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _providers() -> list[Error]:
    errors = []
    for block, (variable, dev_names) in DEVELOPMENT_PROVIDERS.items():
        name = (getattr(settings, block, None) or {}).get("PROVIDER", "")
        if name in dev_names:
            errors.append(
                Error(
                    f"{block} provider {name!r} is a development provider and DEBUG is off.",
                    hint=f"Set {variable} to the production provider (.env.example lists them).",
                    id=f"anju.E00{list(DEVELOPMENT_PROVIDERS).index(block) + 1}",
                )
            )
    return errors


def _cert_names(path: Path) -> tuple[str, str] | None:
    """(subject, issuer) of a PEM certificate as RFC 4514 strings; None when absent or bad."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()


def _signing_ca() -> list[Error]:
    signing = getattr(settings, "SIGNING", {}) or {}
    errors = []
    if signing.get("DEV_CA_AUTOCREATE"):
        errors.append(
            Error(
                "The development CA is created on first use (DEV_CA_AUTOCREATE) and DEBUG is off.",
                hint="Set ANJU_SIGNING_DEV_CA_AUTOCREATE=0 and install the organisation's CA, "
                "seal and time-stamping certificates in ANJU_SIGNING_CA_DIR.",
                id="anju.E010",
            )
        )
    directory = Path(signing.get("CA_DIR", ""))
    root = _cert_names(directory / "root.crt.pem")
    tsa = _cert_names(directory / "tsa.crt.pem")
    if root is None or tsa is None:
        errors.append(
            Error(
                f"The signing CA in {directory} is missing or unreadable "
                "(root.crt.pem and tsa.crt.pem).",
                hint="Install the organisation's certificates there (signing/agreements/ca.py "
                "lists the files).",
                id="anju.E011",
            )
        )
        return errors
    if DEV_CA_MARKER in root[0]:
        errors.append(
            Error(
                f"The signing CA in {directory} is the development CA ({root[0]}).",
                hint="Replace root, seal and TSA with the organisation's own certificates.",
                id="anju.E012",
            )
        )
    if DEV_CA_MARKER in tsa[1]:
        errors.append(
            Error(
                f"The time-stamping authority in {directory} is issued by the development CA "
                f"({tsa[1]}).",
                hint="Install the organisation's TSA certificate and key (tsa.crt.pem, "
                "tsa.key.pem) under its own CA.",
                id="anju.E013",
            )
        )
    return errors


def _public_key_bytes(pem: str) -> bytes | None:
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return None
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _development_keys() -> list[Error]:
    errors = []
    for directory in _var_dirs():
        generated = directory / "secret_key"
        try:
            if generated.read_text().strip() == settings.SECRET_KEY:
                errors.append(
                    Error(
                        f"SECRET_KEY is the development key generated in {generated}.",
                        hint="Set SECRET_KEY to a new long random value.",
                        id="anju.E020",
                    )
                )
        except OSError:
            pass
        generated = directory / "ledger_ed25519.pem"
        try:
            demo_key = _public_key_bytes(generated.read_text())
        except OSError:
            demo_key = None
        if demo_key is not None and demo_key == _public_key_bytes(settings.LEDGER_SIGNING_KEY):
            errors.append(
                Error(
                    f"The allocation log's signing key is the development key generated in "
                    f"{generated}.",
                    hint="Generate the production key (openssl genpkey -algorithm ed25519) and "
                    "name it in ANJU_LEDGER_SIGNING_KEY_FILE (deploy/README.md, 'The log key').",
                    id="anju.E021",
                )
            )
        # Personal data's keys (core/pii.py), generated there like the log key.
        for setting, file_name in PII_KEY_FILES.items():
            configured = getattr(settings, setting, None)
            if not configured:
                continue
            configured = {configured} if isinstance(configured, str) else set(configured)
            try:
                generated_keys = set((directory / file_name).read_text().split())
            except OSError:
                continue
            if configured & generated_keys:
                errors.append(
                    Error(
                        f"{setting} holds the development key generated in "
                        f"{directory / file_name}.",
                        hint=f"Generate production keys and set ANJU_{setting} or "
                        f"ANJU_{setting}_FILE (docs/DECISIONS.md, personal data at rest).",
                        id="anju.E025",
                    )
                )
    payment = getattr(settings, "PAYMENT", {}) or {}
    if "API_V3_KEY" in payment and not payment["API_V3_KEY"]:
        errors.append(
            Error(
                "PAYMENT_API_V3_KEY is empty: the development key derived from SECRET_KEY "
                "would decrypt payment notifications.",
                hint="Set PAYMENT_API_V3_KEY to the merchant's APIv3 key.",
                id="anju.E022",
            )
        )
    if payment.get("MCHID") == DEV_PAYMENT_MCHID or payment.get("APPID") == DEV_PAYMENT_APPID:
        errors.append(
            Error(
                "PAYMENT_MCHID / PAYMENT_APPID are the development merchant's.",
                hint="Set them to the merchant number and app id WeChat Pay issued.",
                id="anju.E023",
            )
        )
    if getattr(settings, "BENCH_FLOOR_VIEWS", False):
        errors.append(
            Error(
                "The benchmark's framework-floor views are on (ANJU_BENCH_FLOOR).",
                hint="Unset ANJU_BENCH_FLOOR: those views skip the selection rules.",
                id="anju.E024",
            )
        )
    return errors


# (settings block, provider name that uses it, path to its endpoint, env variable)
VENDOR_ENDPOINTS = (
    ("SMS", "tencent", ("TENCENT", "ENDPOINT"), "SMS_TENCENT_ENDPOINT"),
    ("FACE", "tencent", ("TENCENT", "ENDPOINT"), "FACE_TENCENT_ENDPOINT"),
    ("PAYMENT", "wechatpay", ("ENDPOINT",), "PAYMENT_ENDPOINT"),
)


def _local(url: str) -> bool:
    """An endpoint that is not the vendor's: not https, or on this machine (where the tests'
    and the demo's fake vendor servers listen)."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoints() -> list[Error]:
    errors = []
    for block, provider, keys, variable in VENDOR_ENDPOINTS:
        conf = getattr(settings, block, None) or {}
        if conf.get("PROVIDER") != provider:
            continue
        url: object = conf
        for key in keys:
            url = (url or {}).get(key, "") if isinstance(url, dict) else ""
        if isinstance(url, str) and url and _local(url):
            errors.append(
                Error(
                    f"{variable}={url} is not the vendor's endpoint (not https, or on this "
                    "machine: a fake server of the tests or the demo).",
                    hint=f"Unset {variable} (the vendor's default) or set its https endpoint.",
                    id="anju.E030",
                )
            )
    issuer = (getattr(settings, "OIDC", None) or {}).get("ISSUER", "")
    if issuer and _local(issuer):
        errors.append(
            Error(
                f"OIDC_ISSUER={issuer} is not the identity platform (not https, or on this "
                "machine: the tests' fake issuer).",
                hint="Set OIDC_ISSUER to the province's unified identity platform, or unset it.",
                id="anju.E031",
            )
        )
    return errors


@register("anju", deploy=True)
def production_guard(app_configs=None, **kwargs) -> list[Error]:
    """Errors for every development part configured while DEBUG is off; none with DEBUG on."""
    if settings.DEBUG:
        return []
    return [*_providers(), *_signing_ca(), *_development_keys(), *_endpoints()]
