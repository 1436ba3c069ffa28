#!/usr/bin/env python3
"""Offline verifier for Anju's allocation log (安居选房分配日志离线核验工具).

Anyone holding the log's public key can check, without trusting Anju's database or servers,
that an exported log was never rewritten, that the published allocation follows from it, and
that a family's receipt is in it. The formats are described in docs/TRANSPARENCY.md; the tree
is RFC 9162's (Certificate Transparency 2.0) Merkle tree.

This file is deliberately self-contained: it imports only the Python standard library and the
`cryptography` package (for Ed25519), nothing of Anju, so an auditor can read all of it.

    python verify.py log DIR [--key public_key.pem]
        Check an export written by `manage.py ledger_export`.
    python verify.py receipt RECEIPT.json --key public_key.pem
        Check one family's receipt: its entry, the signed head and the inclusion proof.
    python verify.py consistency OLD_HEAD.json NEW_HEAD.json PROOF.json --key public_key.pem
        Check that the newer signed head extends the older one (PROOF.json: a list of hex hashes).
    python verify.py package PACKAGE [--key public_key.pem]
        Check an agreement's evidence package (a directory from `manage.py evidence_export` or
        the downloaded zip): files, chain, signed head, files against the chain; the PDF
        signatures too when pyHanko is installed (optional, imported only then).

Exit status: 0 every check passed, 1 a check failed (the problems are listed), 2 bad usage.
Requires Python 3.11 or later and `pip install cryptography`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

LOG_NAME = "anju-ledger/round/{round}"
KINDS = {
    "confirm",
    "auto_assign",
    "no_unit",
    "absent",
    "session_close",
    "give_up",
    "staff_assign",
    "unit_withdraw",
    "unit_restore",
}
ALLOCATING = {"confirm", "auto_assign", "staff_assign"}  # payload "unit" is now taken
AUTO = {"auto_assign", "no_unit"}  # one per family in a session's auto-assignment
EXPORT_FILES = ("entries.jsonl", "heads.jsonl", "public_key.pem", "carts.jsonl")
HEX64 = re.compile(r"[0-9a-f]{64}")
SHOW_PROBLEMS = 20


class Problem(Exception):
    """A check that failed; `where` names the index, line or file."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)


# =============================================================================================
# Hashes and the Merkle tree (RFC 9162 §2.1)
# =============================================================================================

EMPTY_ROOT = hashlib.sha256(b"").digest()


def canonical_bytes(entry: dict) -> bytes:
    """The bytes an entry's leaf hash covers (docs/TRANSPARENCY.md)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where RFC 9162 splits a tree."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class MerkleTree:
    """The tree over a list of leaf hashes. Besides the leaves it keeps, level by level, the
    hashes of complete aligned subtrees (level L, position k covers leaves k·2^L .. (k+1)·2^L-1),
    so every MTH the RFC's recursion asks for costs O(log n) instead of O(n)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.size = len(leaves)
        self.levels = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]), RFC 9162 §2.1.1."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:  # a complete aligned subtree: already computed
            return self.levels[n.bit_length() - 1][lo // n]
        k = split_point(n)
        return node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def root(self, size: int) -> bytes:
        return self.mth(0, size)

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]), RFC 9162 §2.1.3.1."""

        def path(m: int, lo: int, hi: int) -> list[bytes]:
            if hi - lo == 1:
                return []
            k = split_point(hi - lo)
            if m < k:
                return path(m, lo, lo + k) + [self.mth(lo + k, hi)]
            return path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

        return path(index, 0, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[0:second]), RFC 9162 §2.1.4.1 (0 < first ≤ second)."""

        def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
            if m == hi - lo:
                return [] if complete else [self.mth(lo, hi)]
            k = split_point(hi - lo)
            if m <= k:
                return subproof(m, lo, lo + k, complete) + [self.mth(lo + k, hi)]
            return subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

        return subproof(first, 0, second, True)


# The two checks below rebuild the root(s) by walking the RFC's recursive definitions of PATH
# and SUBPROOF backwards: the last proof element is the sibling at the top of the tree, the
# first is nearest the leaf. A proof of the wrong length or order cannot come out right.


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """Does `proof` show the leaf hash `leaf` at `index` in the tree of `size` with `root`?"""
    if not 0 <= index < size:
        return False
    remaining = list(proof)

    def rebuild(m: int, n: int) -> bytes | None:
        if n == 1:
            return leaf
        if not remaining:
            return None
        sibling = remaining.pop()
        k = split_point(n)
        if m < k:  # the leaf is on the left; the proof gives MTH of the right part
            left = rebuild(m, k)
            return None if left is None else node_hash(left, sibling)
        right = rebuild(m - k, n - k)
        return None if right is None else node_hash(sibling, right)

    computed = rebuild(index, size)
    return computed is not None and not remaining and computed == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """Does `proof` show that the tree of size `first` with `first_root` is the beginning of the
    tree of size `second` with `second_root`? Equal sizes need equal roots and an empty proof."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    remaining = list(proof)

    def rebuild(m: int, n: int, complete: bool) -> tuple[bytes, bytes] | None:
        """(MTH of the old tree's part here, MTH of the new tree's part here)."""
        if m == n:
            if complete:  # the old tree itself: its root is first_root, not in the proof
                return first_root, first_root
            if not remaining:
                return None
            h = remaining.pop()
            return h, h
        if not remaining:
            return None
        sibling = remaining.pop()
        k = split_point(n)
        if m <= k:  # the old tree ends in the left part; the right part is new
            inner = rebuild(m, k, complete)
            return None if inner is None else (inner[0], node_hash(inner[1], sibling))
        inner = rebuild(m - k, n - k, False)  # the left part is complete in both trees
        if inner is None:
            return None
        return node_hash(sibling, inner[0]), node_hash(sibling, inner[1])

    rebuilt = rebuild(first, second, True)
    return (
        rebuilt is not None
        and not remaining
        and rebuilt[0] == first_root
        and rebuilt[1] == second_root
    )


# =============================================================================================
# Reading files strictly
# =============================================================================================


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key " + repr(next(k for k in keys if keys.count(k) > 1)))
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> object:
    """JSON that means one thing to every reader: no duplicate keys, no NaN/Infinity."""
    return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)


def read_json(path: Path) -> object:
    try:
        return parse_json(path.read_text("utf-8"))
    except FileNotFoundError:
        raise Problem(path.name, "file not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(path.name, f"not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[tuple[int, object]]:
    """(line number, value) for every line; a blank line inside the file is a problem."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise Problem(path.name, "file not found") from None
    except UnicodeDecodeError:
        raise Problem(path.name, "not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            out.append((number, parse_json(line)))
        except ValueError as exc:
            raise Problem(f"{path.name} line {number}", f"not valid JSON ({exc})") from None
    return out


def hex_hash(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise Problem("", f"{what} is not 64 lowercase hex digits")
    return bytes.fromhex(value)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# =============================================================================================
# The log key and signed tree heads
# =============================================================================================


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise Problem(str(path), "key file not found") from None
    except ValueError as exc:
        raise Problem(str(path), f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Problem(str(path), "not an Ed25519 public key")
    return key


def raw_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_key(key)).hexdigest()[:16]


HEAD_FIELDS = {"log", "size", "root", "time", "key_id", "signature"}


def check_head(head: object, key: Ed25519PublicKey, where: str) -> dict:
    """A signed tree head's shape, key id and Ed25519 signature; returns it with `root_bytes`."""
    if not isinstance(head, dict):
        raise Problem(where, "a tree head must be a JSON object")
    missing = HEAD_FIELDS - head.keys()
    if missing:
        raise Problem(where, f"tree head lacks {', '.join(sorted(missing))}")
    if not isinstance(head["log"], str) or not is_int(head["size"]) or head["size"] < 0:
        raise Problem(where, "tree head has a bad log name or size")
    try:
        root = hex_hash(head["root"], "root")
    except Problem as exc:
        raise Problem(where, str(exc)) from None
    if not isinstance(head["time"], str) or parse_time(head["time"]) is None:
        raise Problem(where, "tree head time is not an ISO 8601 UTC time")
    if head["key_id"] != key_id(key):
        raise Problem(
            where, f"signed by key {head['key_id']!r}, not by this log's key {key_id(key)}"
        )
    message = f"{head['log']}\n{head['size']}\n{head['root']}\n{head['time']}\n".encode()
    try:
        signature = base64.b64decode(str(head["signature"]), validate=True)
        key.verify(signature, message)
    except (InvalidSignature, binascii.Error, ValueError):
        raise Problem(where, "the signature is not valid for this head") from None
    return {**head, "root_bytes": root}


def parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        return None
    return parsed


# =============================================================================================
# `verify.py log DIR`
# =============================================================================================


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.lines: list[str] = []

    def problem(self, where: str, reason: str) -> None:
        self.problems.append(f"{where}: {reason}" if where else reason)

    def add(self, problem: Problem) -> None:
        self.problems.append(str(problem))

    def say(self, line: str) -> None:
        self.lines.append(line)

    def finish(self, title: str) -> int:
        print(title)
        for line in self.lines:
            print("  " + line)
        if not self.problems:
            print("RESULT: OK, every check passed.")
            return 0
        print(f"RESULT: FAILED, {len(self.problems)} problem(s):")
        for text in self.problems[:SHOW_PROBLEMS]:
            print("  - " + text)
        if len(self.problems) > SHOW_PROBLEMS:
            print(f"  ... and {len(self.problems) - SHOW_PROBLEMS} more")
        return 1


def check_manifest(folder: Path, report: Report) -> dict | None:
    """manifest.json: the log, the round and a SHA-256 per file; every file must match."""
    try:
        manifest = read_json(folder / "manifest.json")
    except Problem as exc:
        report.add(exc)
        return None
    if (
        not isinstance(manifest, dict)
        or not isinstance(manifest.get("files"), dict)
        or not is_int(manifest.get("round"))
        or not isinstance(manifest.get("log"), str)
    ):
        report.problem("manifest.json", "needs log, round and files")
        return None
    if manifest["log"] != LOG_NAME.format(round=manifest["round"]):
        report.problem(
            "manifest.json", f"log {manifest['log']!r} is not round {manifest['round']}'s"
        )
    files: dict = manifest["files"]
    for name in EXPORT_FILES:
        if name not in files:
            report.problem("manifest.json", f"does not list {name}")
    good = 0
    for name, digest in sorted(files.items()):
        if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", ".."):
            report.problem("manifest.json", f"file name {name!r} is not a plain file name")
            continue
        path = folder / name
        if not path.is_file():
            report.problem("manifest.json", f"lists {name}, which is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            report.problem(name, "its SHA-256 differs from the one in manifest.json")
        else:
            good += 1
    unlisted = sorted(
        p.name for p in folder.iterdir() if p.name != "manifest.json" and p.name not in files
    )
    report.say(f"Manifest: {good} of {len(files)} file hashes match.")
    if unlisted:
        report.say(f"(not in the manifest, not checked: {', '.join(unlisted)})")
    return manifest


def check_entries(rows: list[tuple[int, object]], round_id: int | None, report: Report):
    """Every line `{"index", "leaf_hash", "entry"}`: indexes 0, 1, 2, ... in order, the leaf hash
    recomputed from the entry's canonical bytes. Returns (entries, leaf hashes) by position
    and whether every entry has the documented shape."""
    shaped = True
    entries: list[dict] = []
    leaves: list[bytes] = []
    order_reported = False
    for position, (line, row) in enumerate(rows):
        where = f"entries.jsonl line {line} (index {position})"
        if not isinstance(row, dict) or set(row) != {"index", "leaf_hash", "entry"}:
            raise Problem(where, 'a line must be {"index", "leaf_hash", "entry"}')
        entry = row["entry"]
        if row["index"] != position and not order_reported:
            report.problem(
                where,
                f"says index {row['index']!r}; indexes must run 0, 1, 2, ... "
                "(a line was removed, added, duplicated or moved)",
            )
            order_reported = True
        if (
            not isinstance(entry, dict)
            or set(entry) != {"round", "session", "kind", "at", "payload"}
            or not is_int(entry["round"])
            or entry["kind"] not in KINDS
            or not isinstance(entry["payload"], dict)
            or not (entry["session"] is None or is_int(entry["session"]))
            or not isinstance(entry["at"], str)
            or parse_time(entry["at"]) is None
        ):
            report.problem(where, "the entry does not have the documented shape")
            shaped = False
        elif round_id is not None and entry["round"] != round_id:
            report.problem(where, f"entry of round {entry['round']!r} in round {round_id}'s log")
        recomputed = leaf_hash(canonical_bytes(entry))
        try:
            stated = hex_hash(row["leaf_hash"], "leaf_hash")
        except Problem as exc:
            report.problem(where, str(exc))
            stated = None
        if stated is not None and stated != recomputed:
            report.problem(where, "leaf hash does not match the entry (the entry was edited)")
        entries.append(entry if isinstance(entry, dict) else {})
        leaves.append(recomputed)
    return entries, leaves, shaped


def check_heads(rows, key, log: str | None, tree: MerkleTree, report: Report) -> list[dict]:
    """Each head signed by the key; its root that of the first `size` entries; heads in order
    (size, then time) and each consistent with the one before (an RFC 9162 consistency proof
    built from the entries and checked against the two signed roots)."""
    heads: list[dict] = []
    for line, raw in rows:
        where = f"heads.jsonl line {line}"
        try:
            head = check_head(raw, key, where)
        except Problem as exc:
            report.add(exc)
            continue
        head["where"] = f"{where} (size {head['size']})"
        head["matches"] = False
        if log is not None and head["log"] != log:
            report.problem(head["where"], f"head of log {head['log']!r}, export is {log!r}")
        if head["size"] > tree.size:
            report.problem(
                head["where"],
                f"covers {head['size']} entries but the export has {tree.size} "
                f"(entries {tree.size}..{head['size'] - 1} are missing: the export was cut)",
            )
        elif tree.root(head["size"]) != head["root_bytes"]:
            report.problem(head["where"], "its root is not the root of the entries it covers")
        else:
            head["matches"] = True
        heads.append(head)
    proofs = 0
    for before, after in zip(heads, heads[1:], strict=False):
        order_before = (before["size"], parse_time(before["time"]))
        order_after = (after["size"], parse_time(after["time"]))
        if not order_before < order_after:
            report.problem(after["where"], "heads are not ordered by size, then time")
        # The proof is built from the exported entries, so it can only speak for a later head
        # whose tree the entries reproduce; if the earlier head then fails, the log signed a
        # tree that its own later tree does not extend.
        if not after["matches"] or not 0 < before["size"] <= after["size"]:
            continue
        proof = tree.consistency_proof(before["size"], after["size"])
        proofs += 1
        if not verify_consistency(
            before["size"], after["size"], before["root_bytes"], after["root_bytes"], proof
        ):
            report.problem(
                after["where"],
                f"not consistent with the head before it (size {before['size']}): the log "
                "signed a tree that this later tree does not extend (its history was rewritten)",
            )
    if heads:
        report.say(
            f"Heads: {len(heads)} signed heads checked, {proofs} consistency proofs between "
            "consecutive heads built and checked."
        )
    return heads


def replay(entries: list[dict], carts_rows, report: Report) -> None:
    """Re-run each closed session's auto-assignment from the log, in index order.

    Units taken before the session's first auto_assign/no_unit entry: every earlier confirm,
    auto_assign and staff_assign takes its unit, unit_withdraw takes one out of the pool and
    unit_restore puts it back. Then families in the order of their auto_assign/no_unit entries
    (which must be in rank order) each get the first unit of their cart not yet taken, or none;
    that must be the unit the entry records, and the cart must be the one carts.jsonl shows for
    the session's close."""
    carts: dict[int, dict] = {}
    for line, row in carts_rows:
        where = f"carts.jsonl line {line}"
        if (
            not isinstance(row, dict)
            or not is_int(row.get("session"))
            or not isinstance(row.get("carts"), dict)
        ):
            report.problem(where, 'a line must be {"session": S, "carts": {...}}')
        elif row["session"] in carts:
            report.problem(where, f"session {row['session']} appears twice")
        else:
            carts[row["session"]] = row["carts"]

    closed = [e["session"] for e in entries if e.get("kind") == "session_close"]
    for session in sorted(set(carts) - set(closed)):
        report.problem(
            "carts.jsonl", f"has carts for session {session}, which has no session_close"
        )
    families = sessions = 0
    for session in dict.fromkeys(closed):
        if session is None:
            continue
        sessions += 1
        if session not in carts:
            report.problem("carts.jsonl", f"has no line for closed session {session}")
        session_carts = carts.get(session, {})
        auto = [
            (i, e) for i, e in enumerate(entries) if e["kind"] in AUTO and e["session"] == session
        ]
        if not auto:
            continue
        taken: set[int] = set()
        for i, e in enumerate(entries[: auto[0][0]]):
            unit = e["payload"].get("unit")
            if unit is None:
                continue
            if not is_int(unit):
                report.problem(f"index {i}", f"unit {unit!r} is not a unit id")
                continue
            if e["kind"] in ALLOCATING or e["kind"] == "unit_withdraw":
                taken.add(unit)
            elif e["kind"] == "unit_restore":
                taken.discard(unit)
        last_rank = None
        for index, e in auto:
            where = f"index {index}"
            payload = e["payload"]
            family, rank, cart = payload.get("family"), payload.get("rank"), payload.get("cart")
            recorded = payload.get("unit")
            if (
                not is_int(family)
                or not is_int(rank)
                or not isinstance(cart, list)
                or not all(is_int(u) for u in cart)
            ):
                report.problem(where, f"{e['kind']} needs family, rank and cart (unit ids)")
                continue
            families += 1
            if last_rank is not None and rank < last_rank:
                report.problem(
                    where, f"family {family} (rank {rank}) processed after rank {last_rank}"
                )
            last_rank = rank
            if session_carts.get(str(family), []) != cart:
                report.problem(
                    where,
                    f"family {family}'s cart {cart} is not its cart at the close in carts.jsonl "
                    f"({session_carts.get(str(family), [])})",
                )
            replayed = next((unit for unit in cart if unit not in taken), None)
            if replayed != recorded:
                report.problem(
                    where,
                    f"replay gives family {family} unit {replayed}, the log records {recorded}",
                )
            if replayed is not None:
                taken.add(replayed)
    report.say(
        f"Replay: {sessions} closed session(s), auto-assignment of {families} "
        "family entries re-run."
    )


def command_log(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    report = Report()
    title = f"Anju allocation log export: {folder}"
    if not folder.is_dir():
        report.problem(str(folder), "not a directory")
        return report.finish(title)
    manifest = check_manifest(folder, report)
    round_id = manifest["round"] if manifest else None
    log = manifest["log"] if manifest else None
    if manifest:
        report.say(f"Log: {log} (round {round_id}), exported at {manifest.get('exported_at')}.")
    try:
        key = load_public_key(folder / "public_key.pem")
        if args.key:
            supplied = load_public_key(Path(args.key))
            if raw_key(supplied) != raw_key(key):
                report.problem("public_key.pem", "is not the key given with --key")
            key = supplied
        report.say(
            f"Key: Ed25519, key id {key_id(key)} (compare it with the key id Anju publishes)."
        )
        entry_rows = read_jsonl(folder / "entries.jsonl")
        head_rows = read_jsonl(folder / "heads.jsonl")
        cart_rows = read_jsonl(folder / "carts.jsonl")
        entries, leaves, shaped = check_entries(entry_rows, round_id, report)
    except Problem as exc:
        report.add(exc)
        return report.finish(title)
    kinds = Counter(e.get("kind") for e in entries)
    report.say(
        f"Entries: {len(entries)}, leaf hashes recomputed ("
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: str(kv[0])))
        + ")."
    )
    tree = MerkleTree(leaves)
    heads = check_heads(head_rows, key, log, tree, report)
    if not heads:
        if entries:
            report.problem("heads.jsonl", "no valid signed head: nothing vouches for the entries")
    else:
        latest = heads[-1]
        report.say(
            f"Latest head: size {latest['size']}, root {latest['root']}, time {latest['time']}."
        )
        if latest["size"] < len(entries):
            report.problem(
                f"index {latest['size']}",
                f"entries {latest['size']}..{len(entries) - 1} are not covered by any signed head",
            )
    if shaped:
        replay(entries, cart_rows, report)
    else:
        report.problem("replay", "not run: some entries do not have the documented shape")
    return report.finish(title)


# =============================================================================================
# `verify.py receipt` and `verify.py consistency`
# =============================================================================================


def command_receipt(args: argparse.Namespace) -> int:
    report = Report()
    title = f"Anju allocation receipt: {args.receipt}"
    try:
        key = load_public_key(Path(args.key))
        receipt = read_json(Path(args.receipt))
        if not isinstance(receipt, dict) or not {
            "log",
            "index",
            "leaf_hash",
            "entry",
            "head",
            "inclusion",
        } <= set(receipt):
            raise Problem(
                "receipt", 'needs "log", "index", "leaf_hash", "entry", "head", "inclusion"'
            )
        entry, index = receipt["entry"], receipt["index"]
        if not isinstance(entry, dict) or not is_int(index) or index < 0:
            raise Problem("receipt", "entry must be an object and index a non-negative integer")
        report.say(f"Log: {receipt['log']}, index {index}, kind {entry.get('kind')}.")
        leaf = leaf_hash(canonical_bytes(entry))
        if hex_hash(receipt["leaf_hash"], "leaf_hash") != leaf:
            report.problem(f"index {index}", "leaf hash does not match the entry")
        if receipt["log"] != LOG_NAME.format(round=entry.get("round")):
            report.problem(f"index {index}", "the entry's round is not this log's round")
        if receipt["head"] is None:
            raise Problem("receipt", "no signed head yet (the entry was still pending)")
        head = check_head(receipt["head"], key, "head")
        report.say(f"Head: size {head['size']}, root {head['root']}, signed {head['time']}.")
        if head["log"] != receipt["log"]:
            report.problem("head", f"belongs to log {head['log']!r}")
        if not isinstance(receipt["inclusion"], list):
            raise Problem("inclusion", "must be a list of hex hashes")
        proof = [hex_hash(h, "an inclusion proof hash") for h in receipt["inclusion"]]
        if verify_inclusion(index, head["size"], leaf, proof, head["root_bytes"]):
            report.say(f"Inclusion: entry {index} is in the signed tree of size {head['size']}.")
        else:
            report.problem(f"index {index}", "the inclusion proof does not verify against the head")
    except Problem as exc:
        report.add(exc)
    return report.finish(title)


def command_consistency(args: argparse.Namespace) -> int:
    report = Report()
    title = f"Anju log consistency: {args.old_head} -> {args.new_head}"
    try:
        key = load_public_key(Path(args.key))
        old = check_head(read_json(Path(args.old_head)), key, "old head")
        new = check_head(read_json(Path(args.new_head)), key, "new head")
        raw_proof = read_json(Path(args.proof))
        if not isinstance(raw_proof, list):
            raise Problem("proof", "must be a JSON list of hex hashes")
        proof = [hex_hash(h, "a consistency proof hash") for h in raw_proof]
        report.say(f"Old head: size {old['size']}, root {old['root']}, signed {old['time']}.")
        report.say(f"New head: size {new['size']}, root {new['root']}, signed {new['time']}.")
        if old["log"] != new["log"]:
            raise Problem("", f"the heads belong to different logs ({old['log']}, {new['log']})")
        if old["size"] > new["size"]:
            raise Problem("", "the old head is larger than the new one")
        if old["size"] == 0:
            if old["root_bytes"] != EMPTY_ROOT or proof:
                raise Problem("old head", "an empty tree has root SHA-256('') and an empty proof")
        elif not verify_consistency(
            old["size"], new["size"], old["root_bytes"], new["root_bytes"], proof
        ):
            raise Problem("", "the consistency proof does not verify: the log was rewritten")
        report.say("Consistency: the new tree extends the old one.")
    except Problem as exc:
        report.add(exc)
    return report.finish(title)


# =============================================================================================
# `verify.py package PACKAGE` (an agreement's evidence package)
# =============================================================================================

PACKAGE_FORMAT = "anju-evidence-package/1"
EVIDENCE_LOG = "anju-evidence/agreement/{agreement}"
PACKAGE_REQUIRED = ("evidence.jsonl", "public_key.pem", "agreement.json")
EVIDENCE_HEAD_FIELDS = {"log", "count", "last_hash", "time", "key_id", "signature"}
GENESIS = "0" * 64
MAX_PACKAGE_BYTES = 512 * 1024 * 1024  # a zip that unpacks past this is refused, not read


def _package_name_ok(name: str) -> bool:
    parts = name.split("/")
    return (
        bool(name)
        and "\\" not in name
        and not name.startswith("/")
        and all(part not in ("", ".", "..") for part in parts)
    )


def read_package(path: Path) -> dict[str, bytes]:
    """Every file of a package, by its name inside it (`a/b.txt`): a directory written by
    `manage.py evidence_export`, or the zip downloaded from the admin or the records page."""
    files: dict[str, bytes] = {}
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            if item.is_file():
                files[item.relative_to(path).as_posix()] = item.read_bytes()
        return files
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            if sum(info.file_size for info in infos) > MAX_PACKAGE_BYTES:
                raise Problem(path.name, "unpacks to more than 512 MB: not an evidence package")
            for info in infos:
                if not _package_name_ok(info.filename):
                    raise Problem(path.name, f"holds a file with an unsafe name {info.filename!r}")
                if info.filename in files:
                    raise Problem(path.name, f"holds {info.filename} twice")
                files[info.filename] = archive.read(info)
    except FileNotFoundError:
        raise Problem(str(path), "not found") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise Problem(str(path), f"neither a directory nor a readable zip ({exc})") from None
    return files


def _package_json(files: dict[str, bytes], name: str) -> object:
    if name not in files:
        raise Problem(name, "missing")
    try:
        return parse_json(files[name].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(name, f"not valid JSON ({exc})") from None


def check_package_manifest(files: dict[str, bytes], report: Report) -> dict:
    """manifest.json: the format, the agreement and its log, and a SHA-256 for every other
    file; a file missing, changed or not listed is a problem."""
    manifest = _package_json(files, "manifest.json")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise Problem("manifest.json", "needs format, agreement, log, head and files")
    if manifest.get("format") != PACKAGE_FORMAT:
        raise Problem("manifest.json", f"format {manifest.get('format')!r} is not {PACKAGE_FORMAT}")
    agreement = manifest.get("agreement")
    if not is_int(agreement) or manifest.get("log") != EVIDENCE_LOG.format(agreement=agreement):
        raise Problem("manifest.json", "the agreement id and the log name do not agree")
    listed: dict = manifest["files"]
    for name in PACKAGE_REQUIRED:
        if name not in listed:
            report.problem("manifest.json", f"does not list {name}")
    good = 0
    for name, digest in sorted(listed.items()):
        if not isinstance(name, str) or not _package_name_ok(name) or name == "manifest.json":
            report.problem("manifest.json", f"file name {name!r} is not a file of a package")
        elif name not in files:
            report.problem("manifest.json", f"lists {name}, which is missing")
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            report.problem(name, "its SHA-256 differs from the one in manifest.json")
        else:
            good += 1
    for name in sorted(set(files) - set(listed) - {"manifest.json"}):
        report.problem(name, "is in the package but not in manifest.json")
    report.say(f"Manifest: agreement {agreement}, {good} of {len(listed)} file hashes match.")
    return manifest


def check_evidence_chain(
    files: dict[str, bytes], agreement: int, report: Report
) -> tuple[list[dict], str]:
    """evidence.jsonl: seq 1, 2, … each linked to the previous row's hash, each hash recomputed
    from its entry (SHA-256 of the canonical entry with its prev_hash). Returns the entries and
    the last hash (64 zeros for none)."""
    if "evidence.jsonl" not in files:
        raise Problem("evidence.jsonl", "missing")
    try:
        text = files["evidence.jsonl"].decode("utf-8")
    except UnicodeDecodeError:
        raise Problem("evidence.jsonl", "not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows: list[dict] = []
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        where = f"evidence.jsonl line {number}"
        try:
            row = parse_json(line)
        except ValueError as exc:
            raise Problem(where, f"not valid JSON ({exc})") from None
        if not isinstance(row, dict) or set(row) != {"seq", "prev_hash", "hash", "entry"}:
            raise Problem(where, "needs exactly seq, prev_hash, hash and entry")
        entry = row["entry"]
        if not isinstance(entry, dict) or "prev_hash" in entry:
            raise Problem(where, "entry must be an object without its own prev_hash")
        if row["seq"] != number or entry.get("seq") != number:
            raise Problem(where, f"seq {row['seq']!r} where {number} belongs: a row is missing")
        if entry.get("agreement") != agreement:
            raise Problem(where, f"belongs to agreement {entry.get('agreement')!r}")
        if row["prev_hash"] != prev:
            raise Problem(where, "prev_hash is not the previous row's hash")
        hex_hash(row["hash"], f"{where}: hash")
        digest = hashlib.sha256(canonical_bytes({**entry, "prev_hash": prev})).hexdigest()
        if digest != row["hash"]:
            raise Problem(where, f"hash does not match the entry ({entry.get('kind')})")
        prev = row["hash"]
        rows.append(entry)
    report.say(f"Evidence chain: {len(rows)} rows, each linked and hashed.")
    return rows, prev


def check_evidence_head(
    head: object, key: Ed25519PublicKey, log: str, rows: list[dict], last_hash: str
) -> dict:
    """The signed head: its shape, key id, Ed25519 signature and log, and that the chain ends
    exactly there (its count and last hash): a cut tail or a rewritten row fails here."""
    if head is None:
        raise Problem("head", "the package has no signed head: the chain cannot be trusted")
    if not isinstance(head, dict) or set(head) != EVIDENCE_HEAD_FIELDS:
        raise Problem("head", f"must have exactly {', '.join(sorted(EVIDENCE_HEAD_FIELDS))}")
    if not is_int(head["count"]) or head["count"] < 0:
        raise Problem("head", "count must be a non-negative integer")
    hex_hash(head["last_hash"], "head last_hash")
    if not isinstance(head["time"], str) or parse_time(head["time"]) is None:
        raise Problem("head", "time is not an ISO 8601 UTC time")
    if head["key_id"] != key_id(key):
        raise Problem("head", f"signed by key {head['key_id']!r}, not by the log key {key_id(key)}")
    message = f"{head['log']}\n{head['count']}\n{head['last_hash']}\n{head['time']}\n".encode()
    try:
        key.verify(base64.b64decode(str(head["signature"]), validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        raise Problem("head", "the signature is not valid for this head") from None
    if head["log"] != log:
        raise Problem("head", f"belongs to {head['log']!r}, not {log!r}")
    if head["count"] > len(rows):
        raise Problem(
            "head",
            f"the signed head counts {head['count']} rows, the chain has {len(rows)}: "
            "rows were cut off",
        )
    if head["count"] < len(rows):
        raise Problem("head", f"the chain has rows after the signed head's {head['count']}")
    if head["last_hash"] != last_hash:
        raise Problem(
            "head",
            "the chain does not end at the signed hash: a row was rewritten and the hashes "
            "after it recomputed",
        )
    return head


def _sha_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_package_files(files: dict[str, bytes], rows: list[dict], report: Report) -> None:
    """The files against what the chain recorded when they were shown, drawn or signed."""
    datas: list[tuple[object, dict]] = []
    for entry in rows:
        data = entry.get("data")
        datas.append((entry.get("kind"), data if isinstance(data, dict) else {}))
    # The agreement's text: the last text hash the chain recorded.
    texts = [d["text_sha256"] for _, d in datas if isinstance(d.get("text_sha256"), str)]
    if "texts/agreement.txt" not in files:
        report.problem("texts/agreement.txt", "missing")
    elif not texts or _sha_hex(files["texts/agreement.txt"]) != texts[-1]:
        report.problem("texts/agreement.txt", "is not the text the chain recorded as shown")
    # The template version: the hash recorded when the agreement was created.
    created = [d for kind, d in datas if kind == "created"]
    templates = [n for n in files if n.startswith("texts/template-")]
    if created and templates:
        for name in templates:
            if _sha_hex(files[name]) != created[0].get("template_sha256"):
                report.problem(name, "is not the template version the agreement was made from")
    # Consent texts: each version recorded as shown, with its hash.
    shown: dict[tuple[object, object], object] = {}
    for _, data in datas:
        consents = data.get("consents")
        if isinstance(consents, dict):
            for kind, value in consents.items():
                if isinstance(value, dict):
                    shown[(kind, value.get("version"))] = value.get("sha256")
    for (kind, version), digest in sorted(shown.items(), key=str):
        name = f"texts/consent-{kind}-v{version}.txt"
        if name not in files:
            report.problem(name, "missing: the chain records this text as shown")
        elif _sha_hex(files[name]) != digest:
            report.problem(name, "is not the text the chain recorded as shown")
    for name in files:
        if name.startswith("texts/consent-") and not any(
            name == f"texts/consent-{k}-v{v}.txt" for k, v in shown
        ):
            report.problem(name, "the chain does not record this text as shown")
    # The handwritten characters: strokes and images as recorded when drawn.
    drawn = {
        (d.get("attempt"), d.get("index"), d.get("strokes_sha256"), d.get("png_sha256"))
        for kind, d in datas
        if kind == "character_drawn"
    }
    characters = (
        _package_json(files, "signature/characters.json")
        if "signature/characters.json" in files
        else []
    )
    if not isinstance(characters, list):
        raise Problem("signature/characters.json", "must be a list")
    for char in characters:
        where = f"signature/characters.json {char.get('attempt')}/{char.get('index')}"
        strokes_sha = _sha_hex(canonical_bytes(char.get("strokes")))
        if strokes_sha != char.get("strokes_sha256"):
            report.problem(where, "the strokes do not match their SHA-256")
        png = files.get(str(char.get("png")))
        if png is None or _sha_hex(png) != char.get("png_sha256"):
            report.problem(where, "the image does not match its SHA-256")
        recorded_as = (char.get("attempt"), char.get("index"), strokes_sha, char.get("png_sha256"))
        if recorded_as not in drawn:
            report.problem(where, "the chain does not record this character as drawn")
    # The PDFs: each one the chain recorded (submitted, sealed); the sealed one last sealed.
    recorded = {d.get("pdf_sha256") for _, d in datas if d.get("pdf_sha256")}
    pdfs = sorted(n for n in files if n.startswith("documents/") and n.endswith(".pdf"))
    for name in pdfs:
        if _sha_hex(files[name]) not in recorded:
            report.problem(name, "the chain does not record this PDF")
    sealed = [d.get("pdf_sha256") for kind, d in datas if kind == "sealed"]
    summary = _package_json(files, "agreement.json")
    sealed_pdf = summary.get("sealed_pdf") if isinstance(summary, dict) else None
    if sealed and (sealed_pdf not in files or _sha_hex(files[sealed_pdf]) != sealed[-1]):
        report.problem("documents", "the sealed PDF the chain recorded is not in the package")
    report.say(
        f"Files against the chain: text, {len(shown)} consent text(s), "
        f"{len(characters)} character(s), {len(pdfs)} PDF(s) checked."
    )


def check_package_pdfs(files: dict[str, bytes], report: Report) -> None:
    """The PDF signatures, with pyHanko when it is installed (it is optional: without it the
    chain, the head and the hashes are still checked, and the report says the PDFs were not)."""
    import io

    try:
        from asn1crypto import pem
        from asn1crypto import x509 as asn1_x509
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.diff_analysis import ModificationLevel
        from pyhanko.sign.general import find_unique_cms_attribute
        from pyhanko.sign.validation import validate_pdf_signature
        from pyhanko.sign.validation.status import SignatureCoverageLevel
        from pyhanko_certvalidator import ValidationContext
    except ImportError:
        report.say("PDF signatures: NOT checked (pyHanko is not installed: pip install pyHanko).")
        return
    pdfs = sorted(n for n in files if n.startswith("documents/") and n.endswith(".pdf"))
    if not pdfs:
        report.say("PDF signatures: no PDF in the package.")
        return
    if "certificates/ca-root.pem" not in files:
        report.problem("certificates/ca-root.pem", "missing: the PDF signatures have no trust root")
        return
    try:
        root = asn1_x509.Certificate.load(pem.unarmor(files["certificates/ca-root.pem"])[2])
    except Exception as exc:  # any malformed certificate is a problem, not a crash
        report.problem("certificates/ca-root.pem", f"not a certificate ({exc})")
        return
    checked = 0
    for name in pdfs:
        try:
            signatures = list(PdfFileReader(io.BytesIO(files[name])).embedded_regular_signatures)
        except Exception as exc:  # a damaged PDF is a problem, not a crash
            report.problem(name, f"not a readable PDF ({exc})")
            continue
        if not signatures:
            report.problem(name, "has no digital signature")
        for number, signature in enumerate(signatures):
            where = f"{name} signature {signature.field_name}"
            try:
                token = find_unique_cms_attribute(
                    signature.signer_info["unsigned_attrs"], "signature_time_stamp_token"
                )
                moment = token["content"]["encap_content_info"]["content"].parsed["gen_time"].native
            except (KeyError, ValueError):
                moment = None
            try:
                status = validate_pdf_signature(
                    signature,
                    signer_validation_context=ValidationContext(
                        trust_roots=[root], moment=moment, allow_fetching=False
                    ),
                    ts_validation_context=ValidationContext(
                        trust_roots=[root], allow_fetching=False
                    ),
                )
            except Exception as exc:  # a signature that cannot be validated has failed
                report.problem(where, f"cannot be validated ({exc})")
                continue
            if not status.intact:
                report.problem(where, "the signed bytes were changed")
            elif not status.valid:
                report.problem(where, "the signature value is not valid")
            elif not status.trusted:
                report.problem(where, "the certificate does not chain to the CA root at its time")
            stamp = status.timestamp_validity
            if stamp is None or not (stamp.intact and stamp.valid and stamp.trusted):
                report.problem(where, "no valid time-stamp")
            if number == len(signatures) - 1 and status.coverage != (
                SignatureCoverageLevel.ENTIRE_FILE
            ):
                report.problem(where, "content was appended after the last signature")
            level = status.modification_level
            if level is not None and level > ModificationLevel.FORM_FILLING:
                report.problem(where, "later revisions do more than fill signature fields")
            checked += 1
    report.say(f"PDF signatures (pyHanko): {checked} signature(s) in {len(pdfs)} PDF(s) checked.")


def command_package(args: argparse.Namespace) -> int:
    report = Report()
    path = Path(args.package)
    title = f"Anju evidence package: {path}"
    try:
        files = read_package(path)
        manifest = check_package_manifest(files, report)
        if args.key:
            key = load_public_key(Path(args.key))
            if files.get("public_key.pem", b"").strip() != Path(args.key).read_bytes().strip():
                report.say("(the package's public_key.pem is not the key given: --key is used)")
        else:
            if "public_key.pem" not in files:
                raise Problem("public_key.pem", "missing")
            try:
                loaded = serialization.load_pem_public_key(files["public_key.pem"])
            except ValueError as exc:
                raise Problem("public_key.pem", f"not a PEM public key ({exc})") from None
            if not isinstance(loaded, Ed25519PublicKey):
                raise Problem("public_key.pem", "not an Ed25519 public key")
            key = loaded
        report.say(
            f"Log key id: {key_id(key)} (compare it with the one the organisation publishes)."
        )
        rows, last_hash = check_evidence_chain(files, manifest["agreement"], report)
        head = check_evidence_head(manifest.get("head"), key, manifest["log"], rows, last_hash)
        report.say(
            f"Signed head: {head['count']} rows, signed {head['time']}: the chain ends there."
        )
        check_package_files(files, rows, report)
        check_package_pdfs(files, report)
    except Problem as exc:
        report.add(exc)
    return report.finish(title)


def _package_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "package", help="the package: a directory (manage.py evidence_export) or the zip downloaded"
    )
    p.add_argument(
        "--key", help="the log's public key (PEM) obtained independently; default: the package's"
    )


# =============================================================================================
# Subcommands
# =============================================================================================


def _log_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="the export directory (manage.py ledger_export)")
    p.add_argument(
        "--key", help="the log's public key (PEM) obtained independently; default: the export's"
    )


def _receipt_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("receipt", help="the receipt JSON file")
    p.add_argument("--key", required=True, help="the log's public key (PEM)")


def _consistency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("old_head", help="the older signed head (JSON)")
    p.add_argument("new_head", help="the newer signed head (JSON)")
    p.add_argument("proof", help="the consistency proof: a JSON list of hex hashes")
    p.add_argument("--key", required=True, help="the log's public key (PEM)")


# name -> (help, add the arguments, run). Each run returns the exit status.
COMMANDS = {
    "log": ("check an exported allocation log", _log_args, command_log),
    "receipt": ("check a family's receipt", _receipt_args, command_receipt),
    "consistency": (
        "check that a newer head extends an older one",
        _consistency_args,
        command_consistency,
    ),
    # --- SUBCOMMAND SLOT: `package` (agreement evidence packages) is registered here -------
    "package": ("check an agreement evidence package", _package_args, command_package),
    # -------------------------------------------------------------------------------------
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify.py",
        description="Offline verifier for Anju's allocation log (docs/TRANSPARENCY.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(run=run)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
