"""The bench's floor views (mobile_api/floor.py) exist only when ANJU_BENCH_FLOOR=1."""

from __future__ import annotations

import pytest
from django.urls import Resolver404, resolve

from accounts.services import applicant_user_ensure
from tests.factories import FamilyFactory


def test_the_floor_views_are_not_routed_by_default(settings):
    assert settings.BENCH_FLOOR_VIEWS is False
    for url in ("/bench/floor/", "/bench/floor/api/"):
        with pytest.raises(Resolver404):
            resolve(url)


@pytest.mark.django_db
@pytest.mark.urls("mobile_api.floor")
def test_the_plain_floor_answers_without_a_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/bench/floor/")
    assert response.status_code == 200 and response.json() == {"ok": True}


@pytest.mark.django_db
@pytest.mark.urls("mobile_api.floor")
def test_the_api_floor_is_for_a_logged_in_applicant(client):
    assert client.get("/bench/floor/api/").status_code in (401, 403)
    family = FamilyFactory()
    client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    response = client.get("/bench/floor/api/")
    assert response.status_code == 200 and response.json()["family"] == family.pk
