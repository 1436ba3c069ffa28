"""确认正选 as one PostgreSQL statement (issue 14, item 4): `selection_claim(...)` takes the
family's and the unit's row locks, re-checks the rules under them (no allocation yet, the
unit still 可选, the session not closed), then writes the log entry, the allocation, the
unit's and the seat's new state, the result SMS and the family's event — one round trip
instead of a dozen ORM statements. selection/allocation.py calls it (`_claim_sql`) and keeps
the ORM version for SQLite (`_claim_orm`); tests run both against the same cases.

Each statement of a PL/pgSQL function sees the rows committed before it started, so the
checks after a lock wait see what the lock's previous holder committed, as the ORM version's
separate statements do. Locks: family, then unit (the order every selection service keeps);
nothing every confirm shares. The lock wait is bounded by `lock_timeout` (SET LOCAL)."""

from django.db import migrations

CLAIM = r"""
CREATE OR REPLACE FUNCTION selection_claim(
    p_lock_timeout text,
    p_family bigint, p_round bigint, p_unit bigint, p_session bigint, p_seat bigint,
    p_now timestamptz, p_key text,
    p_payload jsonb, p_leaf text,
    p_phone text, p_sms_payload text,
    p_stream text, p_event_data jsonb
) RETURNS TABLE (outcome text, allocation_id bigint, entry_id bigint, other_unit bigint,
                 other_key text)
LANGUAGE plpgsql AS $$
DECLARE
    v_alloc selection_allocation%ROWTYPE;
    v_status text;
    v_entry bigint;
    v_allocation bigint;
    v_seq bigint;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    PERFORM 1 FROM accounts_family WHERE id = p_family FOR UPDATE;
    SELECT * INTO v_alloc FROM selection_allocation
        WHERE round_id = p_round AND family_id = p_family;
    IF FOUND THEN
        RETURN QUERY SELECT 'exists'::text, v_alloc.id, v_alloc.ledger_entry_id,
                            v_alloc.unit_id, v_alloc.idempotency_key::text;
        RETURN;
    END IF;
    SELECT status INTO v_status FROM selection_unit
        WHERE id = p_unit AND round_id = p_round FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unit_not_found'::text, NULL::bigint, NULL::bigint, NULL::bigint,
                            NULL::text;
        RETURN;
    END IF;
    IF v_status <> 'available' THEN
        RETURN QUERY SELECT 'unit_taken'::text, NULL::bigint, NULL::bigint, NULL::bigint,
                            NULL::text;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM selection_session WHERE id = p_session AND status = 'closed') THEN
        RETURN QUERY SELECT 'window_closed'::text, NULL::bigint, NULL::bigint, NULL::bigint,
                            NULL::text;
        RETURN;
    END IF;
    INSERT INTO selection_ledgerentry (round_id, session_id, kind, at, payload, leaf_hash, index)
        VALUES (p_round, p_session, 'confirm', p_now, p_payload, p_leaf, NULL)
        RETURNING id INTO v_entry;
    INSERT INTO selection_allocation (round_id, unit_id, family_id, session_id, how, at,
                                      ledger_entry_id, idempotency_key)
        VALUES (p_round, p_unit, p_family, p_session, 'confirmed', p_now, v_entry, p_key)
        RETURNING id INTO v_allocation;
    UPDATE selection_unit SET status = 'taken' WHERE id = p_unit;
    UPDATE selection_seat SET outcome = 'confirmed' WHERE id = p_seat;
    IF p_phone <> '' THEN
        INSERT INTO sms_smsmessage (phone, kind, payload, status, attempts, next_attempt_at,
                                    claimed_at, last_error, provider, provider_message_id,
                                    created_at, sent_at, expires_at)
            VALUES (p_phone, 'selection_result', p_sms_payload, 'queued', 0, p_now,
                    NULL, '', '', '', p_now, NULL, NULL);
    END IF;
    INSERT INTO events_stream (name, last_seq, updated_at) VALUES (p_stream, 1, p_now)
        ON CONFLICT (name) DO UPDATE
        SET last_seq = events_stream.last_seq + 1, updated_at = EXCLUDED.updated_at
        RETURNING last_seq INTO v_seq;
    INSERT INTO events_event (stream, seq, type, data, at, published_at)
        VALUES (p_stream, v_seq, 'selection.result_assigned', p_event_data, p_now, NULL);
    RETURN QUERY SELECT 'created'::text, v_allocation, v_entry, p_unit, p_key;
END;
$$;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM, params=None)  # no placeholders: %ROWTYPE stays


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS selection_claim(text, bigint, bigint, bigint, bigint, "
            "bigint, timestamptz, text, jsonb, text, text, text, text, jsonb)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("selection", "0008_transparency_log_tables"),
        ("sms", "0002_chinese_labels"),
        ("events", "0002_chinese_labels"),
    ]

    operations = [migrations.RunPython(create, drop)]
