"""Every admin page a staff member can open, as each role opens it: none answers 500, and
none shows English (a model's "Seat object (81)", a stored JSON list, a code where a word
belongs, a line Django's own translation lacks). Every form on those pages is then sent back
twice, as shown and with hostile text in its text inputs: neither answer is a 500.

The world (`day`) has a row of every model the admin shows: a round with its sessions, two
allocations, a lease whose deposit notification was applied, a login device, a supplementary
application and a sealed agreement with its SMS, consents and evidence.
Pages are found, not listed: every registered model's list, add, change, history and delete
page for its newest row, and every object page of the admin's own URLs (review, live,
reschedule, …) with that row's id.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
import time_machine
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.signing.evidence_worlds import sealed_agreement
from tests.signing.viewer_worlds import ca_for

pytestmark = pytest.mark.django_db

# Names, not words: the authenticator apps the second-factor page suggests, file formats and
# digests, the keys of Django's 「按住 Control 键或 Mac 上的 Command 键」, its mention of LDAP.
ALLOWED = {
    *("Google", "Microsoft", "Authenticator"),
    *("CSV", "XLSX", "UTF", "GBK", "PDF", "SHA"),
    *("Control", "Mac", "Command", "LDAP"),
}
# Answers a page may give a role: shown, sent elsewhere (a download or a redirect after a
# check), refused, or not found (an object page of another model's id).
FINE = {200, 302, 403, 404}


def english(page: str, names: set[str]) -> set[str]:
    """English words in the page's text. Not words: what is in <code> (template variables,
    hashes, codes, column names), template syntax, tokens with a digit (keys, masked numbers),
    masked values and `names` (user names)."""
    page = re.sub(r'id="otp-secret">[^<]*<', "<", page)  # the TOTP secret, base32
    page = re.sub(r"<code\b.*?</code>", " ", page, flags=re.S)
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", page, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", " ", html.unescape(text))
    # a masked value is a code: the password's salt and hash 「fffbaa**********」 (random hex:
    # one page in a few hundred drew six letters and no digit), masked numbers
    text = re.sub(r"[A-Za-z0-9+/=_.-]*\*{3,}", " ", text)
    tokens = set(re.findall(r"[A-Za-z0-9_.@-]+", text)) - names
    return {
        word
        for token in tokens
        if not re.search(r"\d", token)
        for word in re.findall(r"[A-Za-z]{3,}", token)
    } - ALLOWED


def admin_object_views() -> list[str]:
    """The admin's own object pages (`<path:object_id>/reschedule/` …), as route templates."""
    found = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                if route.startswith("admin/") and re.search(r"<[^>]*id>/[a-z-]+/", route):
                    found.append(route)

    walk(get_resolver().url_patterns, "")
    return found


@pytest.fixture
def day(settings, tmp_path):
    """Every model the admin shows, with at least one row."""
    from accounts.services import device_session_start
    from core.context import RequestContext
    from selection.models import SupplementaryApplication
    from tests.signing.lease_worlds import NOW
    from tests.signing.test_deposit_notifications import lease_at_deposit, notification, post

    ca_for(settings, tmp_path / "ca")
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    lease, payment = lease_at_deposit()  # a round, two allocations, a lease at its deposit
    with time_machine.travel(NOW, tick=False):  # the deposit paid: a payment notification
        assert post(*notification(payment))[0] == 200
    family = lease.allocation.family
    device_session_start(
        user=family.main_applicant.user,
        session_key="crawl",
        provider="dev_sms",
        ctx=RequestContext(),
    )
    # Shown, not applied for here: the rules of applying are tested in tests/selection.
    SupplementaryApplication.objects.create(
        family=family, round=lease.allocation.round, applied_at=payment.created_at
    )
    sealed_agreement()  # another family's agreement, signed by SMS code and sealed


class PostForms(HTMLParser):
    """The POST forms of a page: (action, [(name, value, type)]) with the values as shown
    (checked boxes, selected options, textarea text)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[list[str]]]] = []
        self.fields: list[list[str]] | None = None
        self.open: list[str] | None = None  # the select or textarea being read

    def handle_starttag(self, tag, attrs):
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.fields = [] if a.get("method", "").lower() == "post" else None
            if self.fields is not None:
                self.forms.append((a.get("action", ""), self.fields))
        elif self.fields is None or not (a.get("name") or tag == "option"):
            return
        elif tag == "input" and (a.get("type") not in ("checkbox", "radio") or "checked" in a):
            self.fields.append([a["name"], a.get("value", ""), a.get("type", "text")])
        elif tag in ("select", "textarea"):
            self.open = [a["name"], "", tag]
            self.fields.append(self.open)
        elif tag == "option" and self.open is not None and ("selected" in a or not self.open[1]):
            self.open[1] = a.get("value", "")

    def handle_data(self, data):
        if self.open is not None and self.open[2] == "textarea":
            self.open[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.fields = None
        elif tag in ("select", "textarea"):
            self.open = None


HOSTILE = "x' <b>{{ x }}{% bad %}\x00" * 20  # quotes, markup, template syntax, NUL
SENT_AS_IS = ("hidden", "submit", "checkbox", "radio", "file", "select")


def send_forms(client: Client, url: str, page: str) -> list[str]:
    """Each POST form of the page sent as shown and with HOSTILE in its text inputs; the
    answers outside FINE and 400. Not sent: the logout form, and a delete confirmation (it has
    nothing to type into, and would delete the row whose other pages the crawl reads)."""
    if url.endswith("/delete/"):
        return []
    parser = PostForms()
    parser.feed(page)
    bad = []
    for action, fields in parser.forms:
        if "logout" in action:
            continue
        for hostile in (False, True):
            data: dict[str, str] = {}
            for name, value, kind in fields:
                if hostile and name != "csrfmiddlewaretoken" and kind not in SENT_AS_IS:
                    value = HOSTILE
                data.setdefault(name, value)
            response = client.post(action or url, data)
            if response.status_code not in FINE | {400}:
                bad.append(f"{response.status_code} POST {action or url} from {url}")
    return bad


def crawl(client: Client) -> tuple[list[str], list[str]]:
    """(answers outside FINE or links that refuse, pages with English) for one logged-in
    client. A link a page offers into the admin must not answer 403: what a role may not do
    is not offered to it (an operator was shown 审核 links that refused it)."""
    urls = []
    object_views = admin_object_views()
    for model in admin.site._registry:
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        urls += [base, base + "add/"]
        newest = model._default_manager.order_by("-pk").first()
        if newest is None:
            continue
        urls += [f"{base}{newest.pk}/{page}/" for page in ("change", "history", "delete")]
        for route in object_views:
            if route.startswith(base[1:]):
                urls.append("/" + re.sub(r"<[^>]*id>", str(newest.pk), route))
    from accounts.models import User
    from signing.models import Agreement

    # Identifiers, not words: user names and agreements' verification codes (random letters).
    names = set(User.objects.values_list("username", flat=True))
    names |= set(Agreement.objects.values_list("verification_code", flat=True))
    bad, foreign = [], []
    offered: dict[str, str] = {}  # admin link → the page that offered it
    for url in dict.fromkeys(re.sub(r"<str:side>", "front", url) for url in urls):
        response = client.get(url)
        if response.status_code not in FINE:
            bad.append(f"{response.status_code} {url}")
        elif response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
            page = response.content.decode()
            words = english(page, names)
            if words:
                foreign.append(f"{url}: {sorted(words)}")
            bad += send_forms(client, url, page)
            for link in re.findall(r'<a [^>]*href="(/admin/[^"?#]*)', page):
                offered.setdefault(html.unescape(link), url)
    for link, page in offered.items():
        if client.get(link).status_code == 403:
            bad.append(f"403 {link}, offered on {page}")
    return bad, foreign


@pytest.mark.parametrize("role", ["operator", "reviewer", "supervisor", "superuser"])
def test_every_admin_page_answers_in_chinese_and_no_form_answers_500(day, role):
    from django.contrib.auth.models import Group

    from accounts.models import User

    if role == "superuser":
        user = User.objects.create_superuser(username="root", password="x")
    else:
        user = User.objects.create_user(username=role, is_staff=True)
        user.groups.set([Group.objects.get(name=role)])
    client = Client(raise_request_exception=False)  # a 500 is an answer to report
    client.force_login(user)
    bad, foreign = crawl(client)
    assert not bad, "\n".join(bad)
    assert not foreign, "\n".join(foreign)


def test_every_sms_and_evidence_kind_has_a_chinese_label():
    """The lists above show kinds by these labels; a kind added without one would show its
    code (the crawl sees only the kinds its world happens to write)."""
    from pathlib import Path

    from signing.agreements.evidence import KIND_LABELS
    from sms.texts import LABELS, TEXTS

    assert set(LABELS) == set(TEXTS)
    written = set()
    for path in (Path(__file__).resolve().parents[2] / "signing").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in re.finditer(r"\b(?:evidence_append|_advance)\(", text):
            kind = re.search(r'kind="([a-z_]+)"', text[call.end() : call.end() + 400])
            if kind:
                written.add(kind.group(1))
    assert {"created", "character_drawn", "deposit_paid", "sealed"} <= written
    assert sorted(written - set(KIND_LABELS)) == []


def test_a_masked_value_is_no_word_and_a_word_beside_it_still_is():
    """The user page shows the password's salt and hash masked; six random hex letters with
    no digit are a code, not English (this failed one crawl in a few hundred)."""
    page = "<p><strong>盐</strong>: <bdi>fffbaa**********</bdi> Save</p>"
    assert english(page, set()) == {"Save"}
