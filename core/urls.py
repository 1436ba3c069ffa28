"""The site's absolute URLs, from one setting.

Every absolute URL the system hands out — the QR code's, the face provider's and the payment
provider's return, callback and notify URLs, the verification link printed in a PDF, the
demo banner's links — is `SITE_URL` followed by a path, built by `absolute_url`. So where the
site is reachable is decided in one place: `make demo HOST=… PORT=…` sets it from where the
demo serves; production sets it to the public origin (`site_url_parse` refuses a bad one at
startup, from config/settings.py).

Not a URLconf (that is config/urls.py); stdlib only, so that settings can import it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEBUG_DEFAULT = "http://127.0.0.1:8000"


class SiteUrlError(ValueError):
    """SITE_URL is not usable; the message says why and what to set."""


def site_url_parse(value: str | None, *, debug: bool, allow_http: bool = False) -> str:
    """The origin `scheme://host[:port]` from SITE_URL, without a trailing slash.

    Accepted: an absolute http(s) URL with a host, an optional port, and no user, path
    (a lone "/" is fine), query or fragment. With DEBUG on, missing means the quick start's
    http://127.0.0.1:8000 and http is fine. With DEBUG off it is required, and plain http
    only with `allow_http` (SITE_URL_ALLOW_HTTP=1): links to an applicant's contract and
    the providers' callbacks must not travel in clear text by accident."""
    raw = (value or "").strip()
    if not raw:
        if debug:
            return DEBUG_DEFAULT
        raise SiteUrlError(
            "SITE_URL is required when DEBUG is off: the public origin of the site, "
            "e.g. SITE_URL=https://anju.example.gov.cn (see .env.example)."
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in raw):
        raise SiteUrlError(f"SITE_URL={raw!r} contains whitespace or control characters.")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise SiteUrlError(
            f"SITE_URL={raw!r} is not an absolute http(s) URL; "
            "write it as https://host or http://host:port."
        )
    if not parts.hostname:
        raise SiteUrlError(f"SITE_URL={raw!r} has no host name.")
    if parts.username is not None or parts.password is not None:
        raise SiteUrlError(f"SITE_URL={raw!r} must not contain a user name or password.")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise SiteUrlError(f"SITE_URL={raw!r} has an invalid port.") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise SiteUrlError(
            f"SITE_URL={raw!r} must be an origin only (scheme, host and port), without a "
            "path, query or fragment: the site is served at the root of its host."
        )
    if scheme == "http" and not debug and not allow_http:
        raise SiteUrlError(
            f"SITE_URL={raw!r} is plain http while DEBUG is off. Use https, or set "
            "SITE_URL_ALLOW_HTTP=1 to accept http on purpose (a closed test network)."
        )
    return f"{scheme}://{parts.netloc.lower()}"


def site_host(site_url: str) -> str:
    """The host of an origin without its port, as ALLOWED_HOSTS holds it ("[::1]" for IPv6)."""
    host = urlsplit(site_url).hostname or ""
    return f"[{host}]" if ":" in host else host


def host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    """Whether Django would serve requests for `host` under `allowed_hosts` (exact names,
    ".example.com" for the domain and its subdomains, "*" for any)."""
    host = host.lower().rstrip(".")
    for pattern in allowed_hosts:
        pattern = pattern.lower()
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith(".") and (host.endswith(pattern) or host == pattern[1:]):
            return True
    return False


def absolute_url(path: str) -> str:
    """`settings.SITE_URL` + `path` (which starts with "/"): the one way to make a URL that
    leaves the site (QR code, SMS, PDF, provider callbacks)."""
    from django.conf import settings

    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"absolute_url needs a path from the site's root, got {path!r}")
    return f"{settings.SITE_URL.rstrip('/')}{path}"
