"""The allocation log as a transparency log: the sequencer (commit order, no gap or duplicate
when killed mid-batch or run twice, with a control), proofs checked against an independent
implementation written here from RFC 9162's definitions, a database rewrite caught by the
signed heads, the export checked offline by tools/verify.py (replay included)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, close_old_connections, connection
from django.db.models import QuerySet

from selection import allocation, carts, staff_ops, translog
from selection.ledger import entry_leaf_hash, stored_entry
from selection.models import CartItem, LedgerEntry, LedgerLog, LedgerNode, TreeHead, Unit
from tests.factories import UserFactory
from tests.worlds import enter, make_world, preselect

ROOT = Path(__file__).resolve().parents[2]
VERIFY = ROOT / "tools" / "verify.py"


# ----------------------------------------------------- RFC 9162, straight from the text


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes (RFC 9162 §2.1.1)."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return _h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (§2.1.3.1)."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (§2.1.4.1)."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


# ----------------------------------------------------------------------------- worlds


def played(sessions: int = 2):
    """Two sessions: confirms, a withdrawn and restored unit, auto-assignments at each close."""
    world = make_world(families=3 * sessions, units=6, sessions=sessions, per_session=3)
    rnd = world.round
    staff = UserFactory(is_staff=True, is_superuser=True)
    for i, family in enumerate(world.families):
        preselect(family, rnd, world.units[i % 3 : i % 3 + 4])
    for s, session in enumerate(world.sessions):
        members = world.families[3 * s : 3 * s + 3]
        for family in members:
            enter(family, rnd, session)
            carts.cart_sync(family=family, round_id=rnd.pk, now=session.starts_at)
        if s == 0:
            staff_ops.unit_withdraw(
                unit_id=world.units[4].pk,
                reason="漏水维修",
                actor=staff,
                ip="127.0.0.1",
                now=session.starts_at + timedelta(seconds=5),
            )
            staff_ops.unit_restore(
                unit_id=world.units[4].pk,
                reason="维修完毕",
                actor=staff,
                ip="127.0.0.1",
                now=session.starts_at + timedelta(seconds=6),
            )
        first = members[0]
        last_in_cart = (
            CartItem.objects.filter(
                family=first,
                round_id=rnd.pk,
                kind=CartItem.Kind.FORMAL,
                unit__status=Unit.Status.AVAILABLE,
            )
            .order_by("-position")
            .first()
        )
        allocation.selection_confirm(
            family=first,
            round_id=rnd.pk,
            unit_id=last_in_cart.unit_id,
            idempotency_key=f"translog-{s}-0001",
            now=session.starts_at + timedelta(seconds=9),
        )
        allocation.session_close(session_id=session.pk, now=session.ends_at)
    return world


def leaves_of(round_id: int) -> list[bytes]:
    return [
        bytes.fromhex(h)
        for h in LedgerEntry.objects.filter(round_id=round_id)
        .order_by("index")
        .values_list("leaf_hash", flat=True)
    ]


# ------------------------------------------------------------------------------ tests


@pytest.mark.django_db
def test_the_sequencer_indexes_in_commit_order_and_signs_a_head():
    world = played(sessions=1)
    assert not LedgerEntry.objects.filter(index__isnull=False).exists()  # written unindexed
    heads = translog.sequence_pending()
    ids = list(LedgerEntry.objects.order_by("id").values_list("id", flat=True))
    assert list(LedgerEntry.objects.order_by("index").values_list("id", flat=True)) == ids
    assert [h.size for h in heads] == [len(ids)]
    head = heads[0]
    assert translog.head_signature_ok(head)
    assert head.root == mth(leaves_of(world.round.pk)).hex()
    assert translog.sequence_pending() == []  # nothing pending: no new head
    for entry in LedgerEntry.objects.all():
        assert entry.leaf_hash == entry_leaf_hash(stored_entry(entry))


@pytest.mark.django_db
def test_proofs_equal_the_rfc_definitions_for_every_leaf_and_size():
    world = played()
    rid = world.round.pk
    # Several heads: sequence in batches of 3, as a busy sequencer would.
    while translog.sequence_round(round_id=rid, batch=3):
        pass
    leaves = leaves_of(rid)
    n = len(leaves)
    assert n >= 10 and TreeHead.objects.filter(round_id=rid).count() == -(-n // 3)
    for size in range(1, n + 1):
        for index in range(size):
            proof = translog.inclusion_proof(round_id=rid, index=index, size=size)
            assert proof == [h.hex() for h in path(index, leaves[:size])]
        for first in range(1, size + 1):
            proof = translog.consistency_proof(round_id=rid, first=first, second=size)
            assert proof == [h.hex() for h in subproof(first, leaves[:size], True)]
    for head in TreeHead.objects.filter(round_id=rid):
        assert head.root == mth(leaves[: head.size]).hex()


@pytest.mark.django_db
def test_a_rewrite_with_every_hash_recomputed_is_caught_by_the_signed_heads():
    world = played(sessions=1)
    rid = world.round.pk
    translog.sequence_pending()
    assert translog.log_verify(round_id=rid).first_bad is None  # control: untouched is fine
    victim = LedgerEntry.objects.filter(kind="auto_assign", index__gt=0).first()
    payload = {**victim.payload, "explanation": "rewritten"}
    LedgerEntry.objects.filter(pk=victim.pk).update(payload=payload)
    victim.refresh_from_db()
    LedgerEntry.objects.filter(pk=victim.pk).update(leaf_hash=entry_leaf_hash(stored_entry(victim)))
    # Recompute the whole tree and every head's root, as someone with database access could.
    from core import merkle

    stored = merkle.all_stored_hashes(leaves_of(rid))
    LedgerNode.objects.filter(round_id=rid).delete()
    LedgerNode.objects.bulk_create(
        LedgerNode(round_id=rid, level=level, k=k, hash=h.hex()) for (level, k), h in stored.items()
    )
    for head in TreeHead.objects.filter(round_id=rid):
        TreeHead.objects.filter(pk=head.pk).update(root=merkle.tree_root(head.size, stored).hex())
    LedgerLog.objects.filter(pk=rid).update(
        root=merkle.tree_root(len(leaves_of(rid)), stored).hex()
    )
    result = translog.log_verify(round_id=rid)
    assert result.first_bad is not None and "signature" in result.reason


@pytest.mark.django_db(transaction=True)
def test_a_sequencer_killed_mid_batch_leaves_no_gap_and_no_duplicate(monkeypatch):
    world = played(sessions=1)
    rid = world.round.pk
    n = LedgerEntry.objects.count()
    reached, release = threading.Event(), threading.Event()
    pid: list[int] = []
    real_create = type(TreeHead.objects).create

    def stalled_create(manager, **kwargs):  # indexes and nodes written, not committed
        if manager.model is not TreeHead:  # the patch is on the shared Manager class
            return real_create(manager, **kwargs)
        pid.append(connection.connection.info.backend_pid)
        reached.set()
        release.wait(10)
        return real_create(manager, **kwargs)

    monkeypatch.setattr(type(TreeHead.objects), "create", stalled_create)
    failure: list[BaseException] = []

    def victim():
        try:
            translog.sequence_round(round_id=rid)
        except OperationalError as exc:
            failure.append(exc)
        finally:
            close_old_connections()

    thread = threading.Thread(target=victim)
    thread.start()
    assert reached.wait(10)
    with connection.cursor() as cursor:  # the process dies: its backend is gone mid-batch
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid[0]])
    release.set()
    thread.join(10)
    assert failure, "the killed sequencer's transaction must not have committed"
    assert not LedgerEntry.objects.filter(index__isnull=False).exists()
    assert not LedgerNode.objects.exists() and not TreeHead.objects.exists()
    monkeypatch.undo()
    translog.sequence_pending()  # the restarted sequencer
    assert sorted(LedgerEntry.objects.values_list("index", flat=True)) == list(range(n))
    assert translog.log_verify(round_id=rid).first_bad is None


def _two_sequencers(rid: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=10)

    def run():
        try:
            start.wait()
            translog.sequence_round(round_id=rid)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return errors


@pytest.mark.django_db(transaction=True)
def test_two_sequencers_at_once_give_each_index_once():
    world = played(sessions=1)
    rid = world.round.pk
    n = LedgerEntry.objects.count()
    assert _two_sequencers(rid) == []
    assert sorted(LedgerEntry.objects.values_list("index", flat=True)) == list(range(n))
    assert TreeHead.objects.filter(round_id=rid).count() == 1  # the second found nothing
    assert translog.log_verify(round_id=rid).first_bad is None


@pytest.mark.django_db(transaction=True)
def test_control_without_the_log_lock_two_sequencers_collide(monkeypatch):
    """Without the LedgerLog row lock, both read the same pending entries and the same size,
    and both try to give them the same indexes: only the unique constraint stops one. The
    lock is what makes the test above pass without any error."""
    world = played(sessions=1)
    rid = world.round.pk
    LedgerLog.objects.create(round_id=rid)  # both find the row (no insert race to wait on)
    monkeypatch.setattr(QuerySet, "select_for_update", lambda self, **kw: self)
    both_read = threading.Barrier(2, timeout=10)
    real_bulk_create = type(LedgerNode.objects).bulk_create

    def after_both_read(manager, *args, **kwargs):  # the pass's first write
        if manager.model is LedgerNode:
            both_read.wait()
        return real_bulk_create(manager, *args, **kwargs)

    monkeypatch.setattr(type(LedgerNode.objects), "bulk_create", after_both_read)
    errors = _two_sequencers(rid)
    assert any(isinstance(e, IntegrityError) for e in errors), errors


@pytest.mark.django_db
def test_the_export_verifies_offline_and_tampering_is_caught(tmp_path):
    world = played()
    rid = world.round.pk
    out = tmp_path / "log"
    call_command("ledger_export", "--round", str(rid), str(out), stdout=open("/dev/null", "w"))
    run = [sys.executable, str(VERIFY), "log", str(out)]
    good = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    lines = (out / "entries.jsonl").read_text().splitlines()
    kinds = {json.loads(line)["entry"]["kind"] for line in lines}
    assert {"confirm", "auto_assign", "session_close", "unit_withdraw", "unit_restore"} <= kinds
    # An auto-assignment rewritten to another unit (hash, manifest recomputed): the heads'
    # roots and the replay both object.
    bad = [json.loads(line) for line in lines]
    target = next(e for e in bad if e["entry"]["kind"] == "auto_assign")
    target["entry"]["payload"]["unit"] = target["entry"]["payload"]["cart"][-1] + 10_000
    (out / "entries.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in bad)
    )
    caught = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)
    assert caught.returncode == 1, caught.stdout


@pytest.mark.django_db
def test_a_familys_receipt_verifies_offline(tmp_path):
    world = played(sessions=1)
    rid = world.round.pk
    family = world.families[0]
    pending = translog.family_receipt(family=family, round_id=rid)
    assert pending.pending and pending.as_json()["head"] is None
    translog.sequence_pending()
    receipt = translog.family_receipt(family=family, round_id=rid).as_json()
    assert receipt["entry"]["payload"]["family"] == family.pk
    leaves = leaves_of(rid)
    assert receipt["inclusion"] == [h.hex() for h in path(receipt["index"], leaves)]
    (tmp_path / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False))
    (tmp_path / "key.pem").write_text(translog.logkey.public_key_pem())
    run = [sys.executable, str(VERIFY), "receipt", "receipt.json", "--key", "key.pem"]
    assert subprocess.run(run, cwd=tmp_path, capture_output=True).returncode == 0
    receipt["entry"]["payload"]["unit"] += 1  # another unit claimed with the same proof
    (tmp_path / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False))
    assert subprocess.run(run, cwd=tmp_path, capture_output=True).returncode == 1


@pytest.mark.django_db
def test_staff_see_the_entry_number_the_family_sees():
    """The family's result page and the public check count entries from 1 (第{index + 1}条);
    the admin shows an allocation's entry by its str, which must say the same number."""
    world = played(sessions=1)
    translog.sequence_pending()
    family = world.families[0]
    receipt = translog.family_receipt(family=family, round_id=world.round.pk).as_json()
    entry = LedgerEntry.objects.get(round=world.round, index=receipt["index"])
    assert str(entry) == f"选房日志第{receipt['index'] + 1}条"
    assert str(LedgerEntry(index=0)) == "选房日志第1条"
    assert str(LedgerEntry(index=None)) == "选房日志（待排序）"
