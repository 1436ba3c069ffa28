"""The database guards "a unit is 已选 exactly when it has an allocation".

PostgreSQL: two deferred constraint triggers, checked at COMMIT of every transaction that
inserts, deletes or re-points an allocation or changes a unit's status. Deferred because the
services write the allocation and the unit status one after the other in one transaction. A
violation raises SQLSTATE 23514 (check_violation), which Django raises as IntegrityError and the
API answers as 409 `invariant_violation` (mobile_api.errors).

SQLite (the embedded quick start only) has no constraint triggers: there the services alone keep
the rule; production and the test suite run on PostgreSQL.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION anju_unit_allocation_check(unit bigint) RETURNS void AS $$
DECLARE
    unit_status varchar;
    allocated boolean;
BEGIN
    SELECT status INTO unit_status FROM selection_unit WHERE id = unit;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    allocated := EXISTS (SELECT 1 FROM selection_allocation WHERE unit_id = unit);
    IF (unit_status = 'taken') <> allocated THEN
        RAISE EXCEPTION 'anju invariant: unit % status % with allocation %', unit,
            unit_status, allocated
            USING ERRCODE = 'check_violation', CONSTRAINT = 'unit_taken_iff_allocated';
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION anju_unit_status_guard() RETURNS trigger AS $$
BEGIN
    PERFORM anju_unit_allocation_check(NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION anju_allocation_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM anju_unit_allocation_check(OLD.unit_id);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM anju_unit_allocation_check(NEW.unit_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS unit_taken_iff_allocated ON selection_unit;
CREATE CONSTRAINT TRIGGER unit_taken_iff_allocated
    AFTER INSERT OR UPDATE OF status ON selection_unit
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION anju_unit_status_guard();

DROP TRIGGER IF EXISTS allocation_unit_taken ON selection_allocation;
CREATE CONSTRAINT TRIGGER allocation_unit_taken
    AFTER INSERT OR UPDATE OF unit_id OR DELETE ON selection_allocation
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION anju_allocation_guard();
"""

DROP = """
DROP TRIGGER IF EXISTS allocation_unit_taken ON selection_allocation;
DROP TRIGGER IF EXISTS unit_taken_iff_allocated ON selection_unit;
DROP FUNCTION IF EXISTS anju_allocation_guard();
DROP FUNCTION IF EXISTS anju_unit_status_guard();
DROP FUNCTION IF EXISTS anju_unit_allocation_check(bigint);
"""


def _run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("selection", "0004_chinese_labels")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
