"""core.merkle against a naive implementation written here straight from RFC 9162's recursive
definitions (MTH §2.1.1, PATH §2.1.3.1, PROOF/SUBPROOF §2.1.4.1) over a plain list of leaves:
for every tree size 1..70 and every index / first size, the stored-subtree roots and proofs
equal the naive ones and verify; tampered proofs do not; bad arguments raise."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import merkle

MAX_N = 70


# --- the naive reference: RFC 9162 §2.1, recursion over the list of entries -----------------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over entry data (not leaf hashes)."""
    if not d:
        return sha(b"")
    if len(d) == 1:
        return sha(b"\x00" + d[0])
    k = largest_power_of_two_below(len(d))
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(d) == 1:
        return []
    k = largest_power_of_two_below(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]), defined by the RFC for 0 < m < n; empty for m == 0 and m == n here."""
    if m == 0:
        return []
    return subproof(m, d, True)


# --- fixtures -------------------------------------------------------------------------------

DATA = [f"entry {i}".encode() for i in range(MAX_N)]
LEAVES = [merkle.leaf_hash(d) for d in DATA]
STORED = merkle.all_stored_hashes(LEAVES)
ROOTS = [mth(DATA[:n]) for n in range(MAX_N + 1)]


def stored_upto(n: int) -> dict[tuple[int, int], bytes]:
    """Only the records that exist once n leaves are appended (no peeking at later subtrees)."""
    return {(lv, k): h for (lv, k), h in STORED.items() if (k + 1) << lv <= n}


def test_hash_primitives_follow_the_rfc():
    assert merkle.EMPTY_ROOT == sha(b"") == mth([])
    assert merkle.EMPTY_ROOT.hex().startswith("e3b0c442")
    assert merkle.leaf_hash(b"abc") == sha(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == sha(b"\x01" + b"L" * 32 + b"R" * 32)


def test_appending_stores_each_complete_subtree_exactly_once():
    stored: dict[tuple[int, int], bytes] = {}
    for n, leaf in enumerate(LEAVES):
        needed = merkle.append_indexes(n)
        assert all(c in stored for c in needed)
        records = merkle.stored_hashes_for_append(n, leaf, {c: stored[c] for c in needed})
        assert records[0] == (0, n, leaf)
        for level, k, h in records:
            assert (level, k) not in stored
            # the record is MTH of exactly the leaves it claims to cover
            assert h == mth(DATA[k << level : (k + 1) << level])
            stored[(level, k)] = h
        # leaf n completes one subtree per trailing 1 bit of n
        assert len(records) == 1 + len(needed)
    assert stored == STORED
    assert len(stored) == 2 * MAX_N - bin(MAX_N).count("1")


def test_a_callable_reader_is_equivalent_to_a_dict():
    calls: list[tuple[int, int]] = []

    def read(level: int, k: int) -> bytes:
        calls.append((level, k))
        return STORED[(level, k)]

    assert merkle.tree_root(45, read) == ROOTS[45]
    assert sorted(set(calls)) == sorted(merkle.root_indexes(45))
    assert merkle.inclusion_proof(7, 45, read) == path(7, DATA[:45])
    assert merkle.consistency_proof(13, 45, read) == proof(13, DATA[:45])


@pytest.mark.parametrize("n", range(0, MAX_N + 1))
def test_root_equals_the_naive_mth_from_only_the_listed_records(n):
    needed = merkle.root_indexes(n)
    assert len(needed) == bin(n).count("1")  # one stored subtree per set bit
    only = {c: STORED[c] for c in needed}
    assert merkle.tree_root(n, only) == ROOTS[n]
    assert merkle.tree_root(n, stored_upto(n)) == ROOTS[n]


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_proofs_equal_the_naive_path_and_verify(n):
    avail = stored_upto(n)
    for index in range(n):
        needed = merkle.inclusion_proof_indexes(index, n)
        got = merkle.inclusion_proof(index, n, {c: avail[c] for c in needed})
        assert got == path(index, DATA[:n]), (index, n)
        assert merkle.verify_inclusion(index, n, LEAVES[index], got, ROOTS[n])


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_consistency_proofs_equal_the_naive_proof_and_verify(n):
    avail = stored_upto(n)
    for m in range(0, n + 1):
        needed = merkle.consistency_proof_indexes(m, n)
        got = merkle.consistency_proof(m, n, {c: avail[c] for c in needed})
        assert got == proof(m, DATA[:n]), (m, n)
        assert merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], got), (m, n)


def flip(h: bytes, i: int = 0) -> bytes:
    return h[:i] + bytes([h[i] ^ 1]) + h[i + 1 :]


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_tampered_inclusion_proofs_fail(n):
    root = ROOTS[n]
    for index in range(n):
        good = path(index, DATA[:n])
        leaf = LEAVES[index]
        assert not merkle.verify_inclusion(index, n, flip(leaf), good, root)
        assert not merkle.verify_inclusion(index, n, leaf, good, flip(root, 31))
        for i in range(len(good)):
            bad = list(good)
            bad[i] = flip(bad[i], i % 32)
            assert not merkle.verify_inclusion(index, n, leaf, bad, root)
        assert not merkle.verify_inclusion(index, n, leaf, good + [LEAVES[0]], root)
        if good:
            assert not merkle.verify_inclusion(index, n, leaf, good[:-1], root)
            assert not merkle.verify_inclusion(index, n, leaf, good[::-1], root) or len(good) == 1
        for other in (index - 1, index + 1):
            if 0 <= other < n:
                assert not merkle.verify_inclusion(other, n, leaf, good, root)


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_tampered_consistency_proofs_fail(n):
    for m in range(1, n):
        good = proof(m, DATA[:n])
        rm, rn = ROOTS[m], ROOTS[n]
        assert not merkle.verify_consistency(m, n, flip(rm), rn, good)
        assert not merkle.verify_consistency(m, n, rm, flip(rn, 5), good)
        for i in range(len(good)):
            bad = list(good)
            bad[i] = flip(bad[i], (i * 7) % 32)
            assert not merkle.verify_consistency(m, n, rm, rn, bad), (m, n, i)
        assert not merkle.verify_consistency(m, n, rm, rn, good[:-1])
        assert not merkle.verify_consistency(m, n, rm, rn, good + [LEAVES[0]])
        assert not merkle.verify_consistency(m, n, rm, rn, [])
        if len(good) > 1 and good[0] != good[-1]:
            assert not merkle.verify_consistency(m, n, rm, rn, good[::-1])
            swapped = [good[1], good[0], *good[2:]]
            assert not merkle.verify_consistency(m, n, rm, rn, swapped)
        # the same proof does not vouch for a different first size (with that size's real root)
        for other in (m - 1, m + 1):
            if 0 < other < n and proof(other, DATA[:n]) != good:
                assert not merkle.verify_consistency(other, n, ROOTS[other], rn, good)
        # a tree that does not extend the first one: the second root of a different history
        forked = mth(DATA[: m - 1] + [b"rewritten"] + DATA[m:n])
        assert not merkle.verify_consistency(m, n, rm, forked, good)


def test_consistency_edge_sizes():
    r5 = ROOTS[5]
    assert merkle.verify_consistency(5, 5, r5, r5, [])
    assert not merkle.verify_consistency(5, 5, r5, ROOTS[6], [])
    assert not merkle.verify_consistency(5, 5, r5, r5, [LEAVES[0]])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, r5, [])
    assert not merkle.verify_consistency(0, 5, r5, r5, [])
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, r5, [LEAVES[0]])
    assert not merkle.verify_consistency(6, 5, ROOTS[6], r5, proof(5, DATA[:6]))


def test_verifiers_return_false_on_malformed_input_instead_of_raising():
    root, good = ROOTS[9], path(3, DATA[:9])
    for args in [
        (-1, 9, LEAVES[3], good, root),
        (3, -9, LEAVES[3], good, root),
        (9, 9, LEAVES[8], path(8, DATA[:9]), root),
        (3, 9, LEAVES[3][:31], good, root),
        (3, 9, LEAVES[3], good, root.hex()),
        (3, 9, LEAVES[3], [*good[:-1], good[-1] + b"\x00"], root),
        (3, 9, LEAVES[3], [g.hex() for g in good], root),
        (True, 9, LEAVES[3], good, root),
    ]:
        assert merkle.verify_inclusion(*args) is False
    good_c = proof(4, DATA[:9])
    for args in [
        (-1, 9, ROOTS[4], root, good_c),
        (4, 9, ROOTS[4][:16], root, good_c),
        (4, 9, ROOTS[4], root, [g[:31] for g in good_c]),
        (10, 9, ROOTS[4], root, good_c),
    ]:
        assert merkle.verify_consistency(*args) is False


@pytest.mark.parametrize(
    "call",
    [
        lambda: merkle.inclusion_proof(5, 5, STORED),
        lambda: merkle.inclusion_proof(-1, 5, STORED),
        lambda: merkle.inclusion_proof(0, 0, STORED),
        lambda: merkle.inclusion_proof_indexes(7, 3),
        lambda: merkle.consistency_proof(6, 5, STORED),
        lambda: merkle.consistency_proof(-1, 5, STORED),
        lambda: merkle.consistency_proof_indexes(4, 3),
        lambda: merkle.tree_root(-1, STORED),
        lambda: merkle.root_indexes(-2),
        lambda: merkle.stored_hashes_for_append(-1, LEAVES[0], STORED),
        lambda: merkle.stored_hashes_for_append(3, b"short", STORED),
        lambda: merkle.tree_root(1.5, STORED),
        lambda: merkle.tree_root(3, {**STORED, (0, 2): b"x"}),
    ],
)
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_a_missing_stored_record_is_named():
    with pytest.raises(KeyError, match=r"\(0, 4\)"):
        merkle.tree_root(5, {(2, 0): STORED[(2, 0)]})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=300), st.data())
def test_random_larger_trees_agree_with_the_naive_definitions(data, draw):
    n = len(data)
    stored = merkle.all_stored_hashes(merkle.leaf_hash(d) for d in data)
    root = mth(data)
    assert merkle.tree_root(n, stored) == root
    index = draw.draw(st.integers(0, n - 1))
    p = merkle.inclusion_proof(index, n, stored)
    assert p == path(index, data)
    assert merkle.verify_inclusion(index, n, merkle.leaf_hash(data[index]), p, root)
    m = draw.draw(st.integers(0, n))
    c = merkle.consistency_proof(m, n, stored)
    assert c == proof(m, data)
    assert merkle.verify_consistency(m, n, mth(data[:m]), root, c)
