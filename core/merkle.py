"""The Merkle tree of the allocation log (RFC 9162 §2.1, docs/TRANSPARENCY.md): leaf and node
hashes, the tree head's root, inclusion and consistency proofs and their verifiers.

Pure functions over the standard library. The tree is never held in memory: as in Go's
checksum database (golang.org/x/mod/sumdb/tlog) the sequencer stores, for every level L and
index k, the hash of the *complete* subtree covering leaves [k·2^L, (k+1)·2^L). Appending leaf n
creates the records (0, n), and (L, n >> L) for each level L whose subtree leaf n completes
(`stored_hashes_for_append`). Any root or proof is then a function of at most O(log² n) stored
records: the `*_indexes` functions list the (level, k) a computation needs, so the caller can
read them in ONE query and pass them in as a dict (or pass a `read(level, k)` callable).

Sizes and indexes: a tree of size n holds leaves 0..n-1. Bad arguments (negative numbers, an
index outside the tree, m > n) raise ValueError in the builders; the verifiers never raise on
bad input, they return False (a proof that does not verify is just that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32

Coord = tuple[int, int]
"""(level, k): the complete subtree over leaves [k·2^level, (k+1)·2^level)."""

Reader = Mapping[Coord, bytes] | Callable[[int, int], bytes]
"""Where stored complete-subtree hashes come from: a dict keyed by (level, k) or a callable."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of a leaf (an entry's canonical bytes)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- shape of the tree (no hashing) -----------------------------------------------------------


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size ≥ 2): where MTH splits."""
    return 1 << ((size - 1).bit_length() - 1)


def _check_size(n: int, name: str = "n") -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")


def _range_coords(lo: int, hi: int) -> list[Coord]:
    """The complete subtrees, left to right, whose fold is MTH(leaves[lo:hi]).

    Only called for ranges MTH's recursion produces: lo is a multiple of the largest power of two
    ≤ hi - lo, so greedily peeling that power off the left yields stored (aligned) subtrees.
    """
    coords: list[Coord] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):  # cannot happen for MTH's ranges
            raise AssertionError(f"unaligned subtree range [{lo}, {hi})")
        coords.append((level, lo >> level))
        lo += 1 << level
    return coords


def _inclusion_ranges(index: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(index, D[lo:hi]) as the ranges whose MTH form the path."""
    path: list[tuple[int, int]] = []
    # Walk down from the root, then reverse: the path is listed leaf to root.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def _consistency_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) as ranges; [] if m in (0, n)."""
    if m in (0, n):
        return []
    proof: list[tuple[int, int]] = []
    lo, hi, complete = 0, n, True  # SUBPROOF(m - lo, D[lo:hi], complete)
    while m != hi:
        k = _split(hi - lo)
        if m <= lo + k:
            proof.append((lo + k, hi))
            hi = lo + k
        else:
            proof.append((lo, lo + k))
            lo, complete = lo + k, False
    if not complete:
        proof.append((lo, hi))
    proof.reverse()
    return proof


def _coords_of(ranges: Iterable[tuple[int, int]]) -> list[Coord]:
    seen: dict[Coord, None] = {}
    for lo, hi in ranges:
        for coord in _range_coords(lo, hi):
            seen[coord] = None
    return list(seen)


# --- which stored records a computation needs --------------------------------------------------


def append_indexes(n: int) -> list[Coord]:
    """The stored records `stored_hashes_for_append(n, ...)` reads: the left siblings of the
    subtrees leaf n completes."""
    _check_size(n)
    return [(level, (n >> level) - 1) for level in range(_trailing_ones(n))]


def root_indexes(n: int) -> list[Coord]:
    """The stored records `tree_root(n, ...)` reads (at most 1 + log₂ n)."""
    _check_size(n)
    return _range_coords(0, n)


def inclusion_proof_indexes(index: int, n: int) -> list[Coord]:
    """The stored records `inclusion_proof(index, n, ...)` reads."""
    _check_index(index, n)
    return _coords_of(_inclusion_ranges(index, 0, n))


def consistency_proof_indexes(m: int, n: int) -> list[Coord]:
    """The stored records `consistency_proof(m, n, ...)` reads."""
    _check_pair(m, n)
    return _coords_of(_consistency_ranges(m, n))


def _trailing_ones(n: int) -> int:
    return ((n + 1) & -(n + 1)).bit_length() - 1


def _check_index(index: int, n: int) -> None:
    _check_size(n)
    _check_size(index, "index")
    if index >= n:
        raise ValueError(f"index {index} is outside a tree of size {n}")


def _check_pair(m: int, n: int) -> None:
    _check_size(m, "m")
    _check_size(n)
    if m > n:
        raise ValueError(f"the first size {m} is larger than the second {n}")


# --- hashing over stored records ----------------------------------------------------------------


def _getter(read: Reader) -> Callable[[int, int], bytes]:
    if isinstance(read, Mapping):
        table = read

        def get(level: int, k: int) -> bytes:
            try:
                value = table[(level, k)]
            except KeyError:
                raise KeyError(f"stored hash ({level}, {k}) was not provided") from None
            return _hash_value(value, level, k)

        return get

    def call(level: int, k: int) -> bytes:
        return _hash_value(read(level, k), level, k)

    return call


def _hash_value(value: bytes, level: int, k: int) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != HASH_SIZE:
        raise ValueError(f"stored hash ({level}, {k}) is not {HASH_SIZE} bytes")
    return bytes(value)


def _range_hash(lo: int, hi: int, get: Callable[[int, int], bytes]) -> bytes:
    """MTH(leaves[lo:hi]) from stored records: fold the complete subtrees from the right."""
    hashes = [get(level, k) for level, k in _range_coords(lo, hi)]
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def stored_hashes_for_append(n: int, leaf: bytes, read: Reader) -> list[tuple[int, int, bytes]]:
    """The records to store when leaf n (the (n+1)-th leaf; `leaf` is its leaf hash) is appended
    to a tree of size n: [(0, n, leaf), (1, n >> 1, ...), ...], one per subtree it completes.
    Reads the records listed by `append_indexes(n)`."""
    _check_size(n)
    leaf = _hash_value(leaf, 0, n)
    get = _getter(read)
    records = [(0, n, leaf)]
    h = leaf
    for level, k in append_indexes(n):
        h = node_hash(get(level, k), h)
        records.append((level + 1, k >> 1, h))
    return records


def tree_root(n: int, read: Reader) -> bytes:
    """MTH of the first n leaves (RFC 9162 §2.1.1); reads `root_indexes(n)`."""
    _check_size(n)
    if n == 0:
        return EMPTY_ROOT
    return _range_hash(0, n, _getter(read))


def inclusion_proof(index: int, n: int, read: Reader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[n]), leaf to root; reads `inclusion_proof_indexes`."""
    _check_index(index, n)
    get = _getter(read)
    return [_range_hash(lo, hi, get) for lo, hi in _inclusion_ranges(index, 0, n)]


def consistency_proof(m: int, n: int, read: Reader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]); reads `consistency_proof_indexes(m, n)`.

    RFC 9162 defines it for 0 < m < n; for m == 0 and m == n the proof is empty (the empty tree
    is a prefix of every tree; a tree is consistent with itself)."""
    _check_pair(m, n)
    get = _getter(read)
    return [_range_hash(lo, hi, get) for lo, hi in _consistency_ranges(m, n)]


def all_stored_hashes(leaves: Iterable[bytes]) -> dict[Coord, bytes]:
    """Every stored record of the tree over these leaf hashes (for tests, exports, tools)."""
    stored: dict[Coord, bytes] = {}
    for n, leaf in enumerate(leaves):
        for level, k, h in stored_hashes_for_append(n, leaf, stored):
            stored[(level, k)] = h
    return stored


# --- verifiers (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------------


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(index: int, n: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True if `proof` shows the leaf hash `leaf` at `index` in the tree of size n with `root`."""
    if not (_is_size(index) and _is_size(n) and _is_hash(leaf) and _is_hash(root)):
        return False
    if not all(_is_hash(p) for p in proof) or index >= n:
        return False
    fn, sn, r = index, n - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """True if `proof` shows the tree of size m with `root_m` is a prefix of the tree of size n
    with `root_n`. For m == n the proof must be empty and the roots equal; for m == 0 the proof
    must be empty and root_m the empty tree's root."""
    if not (_is_size(m) and _is_size(n) and _is_hash(root_m) and _is_hash(root_n)):
        return False
    if not all(_is_hash(p) for p in proof) or m > n:
        return False
    if m == 0:
        return not proof and root_m == EMPTY_ROOT
    if m == n:
        return not proof and root_m == root_n
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is itself a node on the path
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0
