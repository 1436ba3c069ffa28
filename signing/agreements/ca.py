"""The organisation's certificate authority for agreement PDFs.

`SIGNING["CA_DIR"]` holds, PEM-encoded:

    root.crt.pem / root.key.pem   the CA (EC P-256, basicConstraints CA, keyCertSign/cRLSign)
    seal.crt.pem / seal.key.pem   the organisation's seal (digitalSignature, nonRepudiation)
    tsa.crt.pem  / tsa.key.pem    the in-process time-stamping authority (EKU timeStamping,
                                  signing/agreements/tsa.py): it dates each PDF signature (PAdES B-T), so
                                  a signature stays verifiable after its short-lived
                                  certificate has expired, without a network call
    seal.png                      the seal image stamped on sealed agreements
    seals/<key>/                  one seal per further organisation (甲方): seal.crt.pem,
                                  seal.key.pem, seal.png and name.txt, where <key> is
                                  `seal_key(name)` (the first 16 hex digits of the SHA-256 of
                                  the organisation's name)

The top-level seal is the organisation of `SIGNING["ORG_NAME"]`; an agreement whose template
names another organisation is sealed with that organisation's own seal (`seal_for`), so the
name in its text, its signature block, its seal image and its seal certificate's subject is
one. Development issues such a seal on first use under the development root; production
installs each organisation's seal files under `seals/<key>/`.

All keys are EC P-256 (cheap to generate per agreement and to load), written 0600 in a 0700
directory. `dev_ca_ensure` (and `manage.py signing_dev_ca`)
creates a development set; production replaces the files with the organisation's own (ideally
the keys in an HSM: only `authority_load` reads them).

The applicant's certificate is different: `applicant_certificate_issue` makes a fresh key
and a one-day certificate for one agreement attempt, and returns both *in memory only*. The
key is never written anywhere: `signing.agreements.pdf.pdf_sign_applicant` uses it for exactly one
signature and drops it, so there is no stored key that could later sign on the applicant's
behalf. (Storing it encrypted would only add a secret to guard and a way to re-sign without
the applicant.) The rule that the key is used only after the face check and the SMS code is
the calling service's: `signing.flow`'s submit step (through
`signing.agreements.documents.document_sign`) calls `pdf_sign_applicant` only after both checks, inside
the agreement's row lock, and `pdf_sign_applicant` refuses an agreement whose step is short
of the handwritten signature.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from signing.agreements.seal import seal_png_draw
from signing.models import Agreement

ROOT, SEAL, TSA = "root", "seal", "tsa"
SEAL_PNG = "seal.png"
ROOT_YEARS, SEAL_YEARS, TSA_YEARS = 20, 5, 10
APPLICANT_VALIDITY = timedelta(days=1)
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Authority:
    """The loaded CA directory: the trust root and the organisation's two signing identities."""

    directory: Path
    root_cert: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    seal_cert: x509.Certificate
    seal_key: ec.EllipticCurvePrivateKey
    tsa_cert: x509.Certificate
    tsa_key: ec.EllipticCurvePrivateKey
    seal_png: bytes


@dataclass(frozen=True)
class SealIdentity:
    """One organisation's seal: its certificate (subject O and CN = the organisation's name,
    OU 电子印章), key and image."""

    org_name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    png: bytes


@dataclass(frozen=True)
class IssuedCertificate:
    """A per-agreement certificate and its key. The key lives only in this object."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _ca_public_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """A CA certificate's key: the CAs this module makes are EC (imported ones may be RSA)."""
    key = cert.public_key()
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise ValueError(f"unsupported CA key type {type(key).__name__}")
    return key


def ca_dir() -> Path:
    return Path(settings.SIGNING["CA_DIR"])


def _paths(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / f"{name}.key.pem", directory / f"{name}.crt.pem"


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _store(
    directory: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> None:
    key_path, cert_path = _paths(directory, name)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(key_path, pem_key, mode=0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ImproperlyConfigured(f"{path}: expected an EC private key")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _cn(value: str) -> str:
    """X.509 limits a CN to 64 bytes of UTF-8 (21 CJK characters): cut on a character."""
    while len(value.encode()) > 64:
        value = value[:-1]
    return value


def _name(*, common_name: str, org_name: str, unit: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name[:64]),  # ub-organization-name
    ]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, _cn(common_name)))
    return x509.Name(attrs)


def _leaf_builder(
    *,
    subject: x509.Name,
    public_key,
    issuer_cert: x509.Certificate,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_ca_public_key(issuer_cert)),
            critical=False,
        )
    )


def _key_usage(*, signing: bool, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,  # nonRepudiation
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _root_create(
    *, org_name: str, now: datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name="安居开发测试根证书（仅限开发）", org_name=org_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _seal_create(
    *,
    org_name: str,
    root_key: ec.EllipticCurvePrivateKey,
    root_cert: x509.Certificate,
    now: datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _leaf_builder(
            subject=_name(common_name=org_name, org_name=org_name, unit="电子印章"),
            public_key=key.public_key(),
            issuer_cert=root_cert,
            not_before=now - CLOCK_SKEW,
            not_after=now + timedelta(days=365 * SEAL_YEARS),
        )
        .add_extension(_key_usage(signing=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return key, cert


def _tsa_create(
    *,
    org_name: str,
    root_key: ec.EllipticCurvePrivateKey,
    root_cert: x509.Certificate,
    now: datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _leaf_builder(
            subject=_name(common_name="时间戳服务", org_name=org_name, unit="时间戳"),
            public_key=key.public_key(),
            issuer_cert=root_cert,
            not_before=now - CLOCK_SKEW,
            not_after=now + timedelta(days=365 * TSA_YEARS),
        )
        .add_extension(_key_usage(signing=True), critical=True)
        # RFC 3161 §2.3: the TSA certificate has exactly one critical EKU, timeStamping.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return key, cert


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    with open(directory / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two processes creating at once make one CA, not two
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def dev_ca_ensure(
    *, now: datetime, directory: Path | None = None, org_name: str | None = None
) -> list[str]:
    """Create whatever part of the development CA directory is missing and return the names
    created (`root`, `seal`, `tsa`, `seal.png`); an empty list when all was there.

    A new root reissues the seal and TSA certificates, which must chain to it. Holds an
    exclusive file lock on the directory meanwhile. Writes no database rows.
    """
    directory = directory or ca_dir()
    org_name = org_name or settings.SIGNING["ORG_NAME"]
    created: list[str] = []
    with _locked(directory):
        root_key_path, root_cert_path = _paths(directory, ROOT)
        if root_key_path.exists() and root_cert_path.exists():
            root_key, root_cert = _load_key(root_key_path), _load_cert(root_cert_path)
        else:
            root_key, root_cert = _root_create(org_name=org_name, now=now)
            _store(directory, ROOT, root_key, root_cert)
            created.append(ROOT)
        for name, create in ((SEAL, _seal_create), (TSA, _tsa_create)):
            if ROOT in created or not all(p.exists() for p in _paths(directory, name)):
                key, cert = create(
                    org_name=org_name, root_key=root_key, root_cert=root_cert, now=now
                )
                _store(directory, name, key, cert)
                created.append(name)
        if not (directory / SEAL_PNG).exists():
            png = seal_png_draw(org_name=org_name, font_path=settings.SIGNING["FONT_PATH"])
            _write_atomic(directory / SEAL_PNG, png, mode=0o644)
            created.append(SEAL_PNG)
    if created:
        _authority_cached.cache_clear()
    return created


def _fingerprint(directory: Path) -> tuple[int, ...]:
    files = [p for name in (ROOT, SEAL, TSA) for p in _paths(directory, name)]
    return tuple(p.stat().st_mtime_ns for p in [*files, directory / SEAL_PNG])


@lru_cache(maxsize=8)
def _authority_cached(directory: Path, fingerprint: tuple[int, ...]) -> Authority:
    del fingerprint  # part of the cache key only: replaced files are read again
    return Authority(
        directory=directory,
        root_cert=_load_cert(_paths(directory, ROOT)[1]),
        root_key=_load_key(_paths(directory, ROOT)[0]),
        seal_cert=_load_cert(_paths(directory, SEAL)[1]),
        seal_key=_load_key(_paths(directory, SEAL)[0]),
        tsa_cert=_load_cert(_paths(directory, TSA)[1]),
        tsa_key=_load_key(_paths(directory, TSA)[0]),
        seal_png=(directory / SEAL_PNG).read_bytes(),
    )


def authority_load(*, directory: Path | None = None) -> Authority:
    """The CA directory's certificates and keys (cached per process until a file changes).

    A missing directory is created with `dev_ca_ensure` when `SIGNING["DEV_CA_AUTOCREATE"]`
    is on (development, tests); otherwise raises ImproperlyConfigured naming the command.
    """
    directory = directory or ca_dir()
    try:
        fingerprint = _fingerprint(directory)
    except FileNotFoundError:
        if not settings.SIGNING.get("DEV_CA_AUTOCREATE"):
            raise ImproperlyConfigured(
                f"The signing CA is missing in {directory}: run `manage.py signing_dev_ca` "
                "(development) or install the organisation's certificates there."
            ) from None
        dev_ca_ensure(directory=directory, now=timezone.now())
        fingerprint = _fingerprint(directory)
    return _authority_cached(directory, fingerprint)


def seal_key(org_name: str) -> str:
    """The directory name of an organisation's seal under `seals/`."""
    return hashlib.sha256(org_name.strip().encode()).hexdigest()[:16]


def _seal_dir(directory: Path, org_name: str) -> Path:
    return directory / "seals" / seal_key(org_name)


def _cert_org(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else ""


def seal_ensure(*, org_name: str, now: datetime, directory: Path | None = None) -> bool:
    """Development: issue `org_name`'s seal certificate under the CA's root and draw its seal
    image, in `seals/<key>/`, unless it is there (or is the top-level seal). True when
    created. Holds the directory's lock meanwhile."""
    directory = directory or ca_dir()
    authority = authority_load(directory=directory)
    if _is_top_seal(authority, org_name):
        return False
    target = _seal_dir(directory, org_name)
    with _locked(directory):
        if all(p.exists() for p in (*_paths(target, SEAL), target / SEAL_PNG)):
            return False
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o700)
        key, cert = _seal_create(
            org_name=org_name, root_key=authority.root_key, root_cert=authority.root_cert, now=now
        )
        _store(target, SEAL, key, cert)
        png = seal_png_draw(org_name=org_name, font_path=settings.SIGNING["FONT_PATH"])
        _write_atomic(target / SEAL_PNG, png, mode=0o644)
        _write_atomic(target / "name.txt", org_name.encode(), mode=0o644)
    return True


def _cn_of(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _is_top_seal(authority: Authority, org_name: str) -> bool:
    """Whether the directory's top-level seal certificate is `org_name`'s."""
    cert = authority.seal_cert
    return _cert_org(cert) == org_name[:64] and _cn_of(cert) == _cn(org_name)


@lru_cache(maxsize=32)
def _seal_cached(target: Path, org_name: str, fingerprint: tuple[int, ...]) -> SealIdentity:
    del fingerprint  # part of the cache key only
    return SealIdentity(
        org_name=org_name,
        cert=_load_cert(_paths(target, SEAL)[1]),
        key=_load_key(_paths(target, SEAL)[0]),
        png=(target / SEAL_PNG).read_bytes(),
    )


def seal_for(
    *, org_name: str, now: datetime | None = None, authority: Authority | None = None
) -> SealIdentity:
    """The seal of the organisation named `org_name` (甲方): its own under `seals/<key>/`, or
    the top-level seal when that is the organisation's. In development
    (`SIGNING["DEV_CA_AUTOCREATE"]`) a missing one is issued on first use (`seal_ensure`).
    Raises Conflict `seal_missing` otherwise: sealing under another organisation's name is
    never done."""
    from core.errors import Conflict

    authority = authority or authority_load()
    org_name = org_name.strip()
    target = _seal_dir(authority.directory, org_name)
    files = [*_paths(target, SEAL), target / SEAL_PNG]
    if not all(p.exists() for p in files):
        if _is_top_seal(authority, org_name):
            return SealIdentity(
                org_name=org_name,
                cert=authority.seal_cert,
                key=authority.seal_key,
                png=authority.seal_png,
            )
        if not settings.SIGNING.get("DEV_CA_AUTOCREATE"):
            raise Conflict("seal_missing", f"未配置「{org_name}」的电子印章证书，请联系系统管理员")
        seal_ensure(org_name=org_name, now=now or timezone.now(), directory=authority.directory)
    fingerprint = tuple(p.stat().st_mtime_ns for p in files)
    return _seal_cached(target, org_name, fingerprint)


def applicant_certificate_issue(
    *, agreement: Agreement, now: datetime, authority: Authority | None = None
) -> IssuedCertificate:
    """Issue a one-day certificate for the agreement's signer with a fresh EC P-256 key.

    Subject: CN = the signer's real name, serialNumber = the agreement's verification code
    (never the ID number: the PDF is shown and shared, the certificate travels with it).
    Returns the key in memory only; nothing is written, no row is locked, no event published.
    The caller uses the key for one signature after the face check and the SMS code.
    """
    authority = authority or authority_load()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.COMMON_NAME, _cn(agreement.signer_name)),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, agreement.verification_code),
        ]
    )
    cert = (
        _leaf_builder(
            subject=subject,
            public_key=key.public_key(),
            issuer_cert=authority.root_cert,
            not_before=now - CLOCK_SKEW,
            not_after=now + APPLICANT_VALIDITY,
        )
        .add_extension(_key_usage(signing=True), critical=True)
        .sign(authority.root_key, hashes.SHA256())
    )
    return IssuedCertificate(cert=cert, key=key)
