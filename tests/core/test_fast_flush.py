"""The faster end of transactional tests (tests/fast_flush.py) leaves what Django's flush
leaves: every model table empty but the content types, permissions and role groups, which
stay exactly as post_migrate makes them; a test that changed those gets the full flush."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import TransactionTestCase

from accounts.roles import ROLE_PERMISSIONS
from tests import fast_flush
from tests.worlds import make_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _rows() -> dict[str, int]:
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _roles() -> dict[str, set[str]]:
    return {
        group.name: set(group.permissions.values_list("codename", flat=True))
        for group in Group.objects.all()
    }


def _end_of_a_test() -> None:
    TransactionTestCase()._fixture_teardown()  # what pytest-django calls after each test


def test_every_row_goes_and_the_roles_stay_as_post_migrate_made_them():
    _end_of_a_test()  # the process's first full flush sets the baseline, if not yet done
    roles = _roles()
    assert set(roles) == set(ROLE_PERMISSIONS)
    permissions = Permission.objects.count()
    make_world()
    filled = [table for table, count in _rows().items() if count and table not in fast_flush.KEPT]
    assert "selection_unit" in filled and "accounts_family" in filled

    assert fast_flush.delete_rows("default") is True

    left = {t: n for t, n in _rows().items() if n and t not in fast_flush.KEPT}
    assert left == {}
    assert _roles() == roles
    assert Permission.objects.count() == permissions


def test_a_changed_role_is_noticed_and_the_full_flush_puts_it_back():
    _end_of_a_test()
    roles = _roles()
    operator = Group.objects.get(name="operator")
    operator.permissions.clear()  # what a careless test might do

    assert fast_flush.delete_rows("default") is False  # the fingerprint differs

    _end_of_a_test()  # falls back to Django's flush and post_migrate
    assert _roles() == roles
    assert fast_flush.delete_rows("default") is True  # and the new baseline holds
