"""A faster end for transactional tests on PostgreSQL: the same empty tables as Django's flush.

Django's TransactionTestCase ends each test with `manage.py flush`: one TRUNCATE of every
model table (~110 ms here for 54 tables: TRUNCATE gives each table a new file) and then the
post_migrate signal, which re-creates every content type and permission and re-syncs the
staff role groups (~90 ms). With ~600 transactional tests that was about a minute of the
suite's wall time on two workers.

This does the same in ~10 ms: it DELETEs every row of every model table except the four the
post_migrate handlers would only re-create as they were (content types, permissions, the role
groups and their permissions), in one transaction with `session_replication_role = replica`
so neither the deferred foreign keys nor the allocation guard's constraint triggers fire on
rows that all go together. It keeps Django's semantics otherwise (sequences are not reset,
like flush with reset_sequences=False).

What is kept is checked, not trusted: a fingerprint of the content types, permissions and
role groups is taken after the first full flush of the process; when a test changed any of
them (or the fast path cannot run: another database engine, a role that is not superuser,
`available_apps`, `serialized_rollback`, `reset_sequences`), the test ends with Django's own
flush and post_migrate instead. tests/core/test_fast_flush.py proves both paths.
"""

from __future__ import annotations

from django.db import DatabaseError, connections, transaction
from django.test import TransactionTestCase

KEPT = ("django_content_type", "auth_permission", "auth_group", "auth_group_permissions")

# Everything the kept tables hold, in a stable order, hashed: a changed row, an added one or
# a missing one changes it.
FINGERPRINT = """
SELECT md5(
  coalesce((SELECT string_agg(id || ':' || app_label || '.' || model, ',' ORDER BY id)
            FROM django_content_type), '') || '|' ||
  coalesce((SELECT string_agg(id || ':' || content_type_id || '.' || codename, ','
                              ORDER BY id) FROM auth_permission), '') || '|' ||
  coalesce((SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM auth_group), '')
  || '|' ||
  coalesce((SELECT string_agg(group_id || ':' || permission_id, ','
                              ORDER BY group_id, permission_id)
            FROM auth_group_permissions), '')
)
"""

_django_fixture_teardown = TransactionTestCase._fixture_teardown
_baseline: dict[str, str] = {}  # database alias → fingerprint after a full flush
_superuser: dict[str, bool] = {}


def _fingerprint(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute(FINGERPRINT)
        return cursor.fetchone()[0]


def _can_delete_fast(test: TransactionTestCase, alias: str) -> bool:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return False
    if test.available_apps is not None or test.serialized_rollback or test.reset_sequences:
        return False
    if alias not in _superuser:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            _superuser[alias] = bool(cursor.fetchone()[0])
    return _superuser[alias] and alias in _baseline


def delete_rows(alias: str) -> bool:
    """Empty every model table but KEPT; True when what KEPT holds is still the baseline."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    tables = sorted(
        set(connection.introspection.django_table_names(only_existing=True, include_views=False))
        - set(KEPT)
    )
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL session_replication_role = replica; "
            + "; ".join(f"DELETE FROM {quote(table)}" for table in tables)
        )
    return _fingerprint(connection) == _baseline[alias]


def _fixture_teardown(self: TransactionTestCase) -> None:
    aliases = list(self._databases_names(include_mirrors=False))
    if all(_can_delete_fast(self, alias) for alias in aliases):
        try:
            if all(delete_rows(alias) for alias in aliases):
                return
        except DatabaseError:
            pass  # e.g. a test left a table missing: Django's flush below reports it properly
    _django_fixture_teardown(self)
    for alias in aliases:
        if connections[alias].vendor == "postgresql":
            _baseline[alias] = _fingerprint(connections[alias])


def install() -> None:
    TransactionTestCase._fixture_teardown = _fixture_teardown
