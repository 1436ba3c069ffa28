"""The OpenAPI schema is a contract: it validates with no warning, every success response is
typed, lists are arrays, fixed path values are enums, errors are documented; and the
agreement list is one query plan whatever the number of agreements."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator

from signing.agreements.services import agreement_create
from signing.models import Agreement, AgreementTemplate, TemplateKind
from tests.mobile_api.conftest import ApiClient, error_code
from tests.signing.worlds import CLOSES, OPENS, make_agreement


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _resolve(schema, node):
    if "$ref" in node:
        return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_spectacular_validates_with_no_warning(tmp_path):
    # --fail-on-warn raises SchemaGenerationError on any warning (operationId collisions,
    # unresolvable types, enum naming); --validate checks it against the OpenAPI 3 schema.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )
    assert (tmp_path / "schema.yml").stat().st_size > 10_000


def test_no_success_response_is_an_untyped_object(schema):
    untyped, success = [], 0
    for path, method, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if not code.startswith("2"):
                continue
            success += 1
            for media_type, content in (response.get("content") or {}).items():
                body = _resolve(schema, content["schema"])
                typed = (
                    body.get("properties")
                    or body.get("type") == "array"
                    or body.get("format") == "binary"
                )
                if not typed:
                    untyped.append(f"{method.upper()} {path} {code} {media_type}")
    assert success >= 60
    assert untyped == []


def test_operation_ids_are_unique(schema):
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/signing/agreements/",
        "/api/v1/lease/",
        "/api/v1/lease/banks/",
        "/api/v1/selection/rounds/",
        "/api/v1/selection/{round_id}/units/",
    ],
)
def test_lists_are_documented_as_arrays(schema, path):
    content = schema["paths"][path]["get"]["responses"]["200"]["content"]
    assert content["application/json"]["schema"]["type"] == "array"


@pytest.mark.parametrize(
    ("path", "method", "name", "values"),
    [
        ("/api/v1/selection/{round_id}/cart/{kind}/", "get", "kind", {"pre", "formal"}),
        ("/api/v1/selection/{round_id}/declaration/{phase}/", "post", "phase", {"pre", "formal"}),
        ("/api/v1/lease/{lease_id}/photos/{side}/", "post", "side", {"front", "back"}),
        ("/api/v1/signing/consents/{kind}/", "get", "kind", None),
    ],
)
def test_fixed_path_values_are_enums(schema, path, method, name, values):
    (parameter,) = [p for p in schema["paths"][path][method]["parameters"] if p["name"] == name]
    assert parameter["in"] == "path"
    enum = set(parameter["schema"]["enum"])
    assert enum == values if values else len(enum) >= 2


def test_the_phone_flow_is_one_operation_per_step(schema):
    steps = sorted(
        path.rsplit("/steps/", 1)[1].strip("/") for path in schema["paths"] if "/steps/" in path
    )
    assert steps == sorted(
        [
            "contract-viewed",
            "ecert-consent",
            "identity-confirm",
            "face-start",
            "face-complete",
            "read",
            "signature-complete",
            "sms-code",
            "submit",
        ]
    )
    assert not any("{step}" in path for path in schema["paths"])


def test_error_statuses_are_documented_with_the_error_body(schema):
    for path, method, operation in _operations(schema):
        if path.startswith("/api/v1/payments/") or path.startswith("/api/v1/face/"):
            continue  # server-to-server callbacks document their own refusals
        for code in ("400", "401", "403", "404", "409", "415", "429", "503"):
            response = operation["responses"][code]
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/Error"), (method, path, code)


@pytest.mark.django_db
def test_an_unknown_phone_step_is_the_api_404(settings):
    agreement, applicant = make_agreement()
    api = ApiClient()
    api.client.force_login(applicant.user)
    response = api.post(f"/api/v1/signing/agreements/{agreement.pk}/steps/dance/")
    assert response.status_code == 404 and error_code(response) == "not_found"


@pytest.mark.django_db
def test_the_agreement_list_is_one_query_plan_whatever_the_number_of_agreements():
    agreement, applicant = make_agreement()
    template = AgreementTemplate.objects.get(kind=TemplateKind.RENT_SUBSIDY, version=1)
    api = ApiClient()
    api.client.force_login(applicant.user)

    def listed() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/v1/signing/agreements/")
        assert response.status_code == 200
        return len(response.json()), len(queries)

    one, queries_for_one = listed()
    for _ in range(3):  # closed agreements stay listed; a new one is made each time
        Agreement.objects.filter(family=agreement.family, status="pending").update(
            status=Agreement.Status.VOID
        )
        agreement_create(
            family=agreement.family,
            template=template,
            window_starts_at=OPENS,
            window_ends_at=CLOSES,
            actor=None,
            now=OPENS,
        )
    four, queries_for_four = listed()
    assert (one, four) == (1, 4)
    assert queries_for_four == queries_for_one


@pytest.mark.django_db
def test_the_listed_agreement_carries_its_lease_help_and_times():
    agreement, applicant = make_agreement()
    api = ApiClient()
    api.client.force_login(applicant.user)
    (listed,) = api.get("/api/v1/signing/agreements/").json()
    assert listed["id"] == agreement.pk and listed["lease"] is None
    stored = Agreement.objects.get(pk=agreement.pk)  # as read back: the pages' format
    assert listed["window_starts_at"] == stored.window_starts_at.isoformat()
    assert listed["next_step"] == 1 and listed["signed_at"] is None
    assert listed["help"]["phones"] and isinstance(listed["server_time_ms"], int)
