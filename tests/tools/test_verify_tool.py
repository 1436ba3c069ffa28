"""tools/verify.py, the offline verifier, run as an auditor would run it (a subprocess of the
venv's Python, outside the project directory) on exports, receipts and heads written here by a
small builder that follows docs/TRANSPARENCY.md (with core.merkle and a fresh Ed25519 key).

A good export passes; every kind of tampering the tool promises to catch is caught, with the
problem named: edits, reordered / removed / extra lines, a cut tail, bad or foreign signatures,
heads that do not extend each other, an auto-assignment the replay disagrees with, a cart that
differs from the close's carts, a file that differs from the manifest."""

from __future__ import annotations

import ast
import base64
import copy
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import merkle

VERIFY = Path(__file__).resolve().parents[2] / "tools" / "verify.py"
ROUND = 7
LOG = f"anju-ledger/round/{ROUND}"
T0 = datetime(2026, 12, 5, 2, 0, 0, 123456, tzinfo=UTC)


# --- the builder (docs/TRANSPARENCY.md) -------------------------------------------------------


def canonical(entry: dict) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PrivateKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign_head(key: Ed25519PrivateKey, size: int, root: bytes, at: datetime, **over) -> dict:
    head = {"log": LOG, "size": size, "root": root.hex(), "time": iso(at)}
    head.update(over)
    message = f"{head['log']}\n{head['size']}\n{head['root']}\n{head['time']}\n".encode()
    return {
        **head,
        "key_id": key_id(key),
        "signature": base64.b64encode(key.sign(message)).decode(),
    }


def tree_of(entries: list[dict]) -> dict:
    return merkle.all_stored_hashes(merkle.leaf_hash(canonical(e)) for e in entries)


def heads_for(key, entries: list[dict], sizes: list[int]) -> list[dict]:
    stored = tree_of(entries)
    return [
        sign_head(key, size, merkle.tree_root(size, stored), T0 + timedelta(seconds=10 + i))
        for i, size in enumerate(sizes)
    ]


def entry(i: int, kind: str, session: int | None, **payload) -> dict:
    return {
        "round": ROUND,
        "session": session,
        "kind": kind,
        "at": iso(T0 + timedelta(milliseconds=250 * i)),
        "payload": payload,
    }


def scenario() -> tuple[list[dict], dict[int, dict[str, list[int]]]]:
    """Two sessions. Session 31: two confirms, unit 103 withdrawn, a give-up, then the close
    assigns family 4 past the taken 101 and withdrawn 103 to 104, family 5 nothing, family 6
    105. Unit 103 is restored, and session 32's close gives it to family 10."""
    rows = [
        ("confirm", 31, {"family": 1, "rank": 1, "unit": 101, "unit_label": "1-101"}),
        ("confirm", 31, {"family": 2, "rank": 2, "unit": 102, "unit_label": "1-102"}),
        ("unit_withdraw", None, {"unit": 103, "reason": "维修"}),
        ("give_up", 31, {"family": 3, "rank": 3}),
        ("auto_assign", 31, {"family": 4, "rank": 4, "cart": [101, 103, 104], "unit": 104}),
        ("no_unit", 31, {"family": 5, "rank": 5, "cart": [101, 104], "unit": None}),
        ("auto_assign", 31, {"family": 6, "rank": 6, "cart": [102, 105], "unit": 105}),
        ("session_close", 31, {"families": 6}),
        ("unit_restore", None, {"unit": 103}),
        ("confirm", 32, {"family": 7, "rank": 1, "unit": 106}),
        ("staff_assign", None, {"family": 8, "unit": 107}),
        ("absent", 32, {"family": 9, "rank": 2}),
        ("auto_assign", 32, {"family": 10, "rank": 3, "cart": [103, 107], "unit": 103}),
        ("auto_assign", 32, {"family": 11, "rank": 4, "cart": [107, 103, 108], "unit": 108}),
        ("session_close", 32, {"families": 5}),
    ]
    entries = [
        entry(i, kind, session, **payload) for i, (kind, session, payload) in enumerate(rows)
    ]
    carts = {
        31: {"4": [101, 103, 104], "5": [101, 104], "6": [102, 105], "1": [101]},
        32: {"10": [103, 107], "11": [107, 103, 108]},
    }
    return entries, carts


SIZES = [1, 4, 8, 8, 15]


def jsonl(rows: list) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_export(folder: Path, key, entries, carts, heads=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if heads is None:
        heads = heads_for(key, entries, SIZES)
    lines = [
        {"index": i, "leaf_hash": merkle.leaf_hash(canonical(e)).hex(), "entry": e}
        for i, e in enumerate(entries)
    ]
    (folder / "entries.jsonl").write_text(jsonl(lines), "utf-8")
    (folder / "heads.jsonl").write_text(jsonl(heads), "utf-8")
    (folder / "public_key.pem").write_bytes(public_pem(key))
    (folder / "carts.jsonl").write_text(
        jsonl([{"session": s, "carts": c} for s, c in carts.items()]), "utf-8"
    )
    seal(folder)
    return folder


def seal(folder: Path) -> None:
    """(Re)write manifest.json, as someone rewriting the export would."""
    names = ["entries.jsonl", "heads.jsonl", "public_key.pem", "carts.jsonl"]
    manifest = {
        "log": LOG,
        "round": ROUND,
        "exported_at": iso(T0 + timedelta(hours=1)),
        "files": {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")


def read_lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines(keepends=True)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), "utf-8")


def run(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run(
        [sys.executable, str(VERIFY), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(args[1]).parent if len(args) > 1 else None,
        env=env,
    )


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def export(tmp_path, key) -> Path:
    entries, carts = scenario()
    return write_export(tmp_path / "export", key, entries, carts)


def assert_caught(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RESULT: FAILED" in result.stdout
    for phrase in phrases:
        assert phrase in result.stdout, result.stdout


# --- `verify.py log` ---------------------------------------------------------------------------


def test_a_good_export_passes(export):
    result = run("log", export)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "RESULT: OK" in out
    assert "Entries: 15" in out
    assert "auto_assign 4" in out
    assert "Heads: 5 signed heads checked, 4 consistency proofs" in out
    assert "Replay: 2 closed session(s), auto-assignment of 5 family entries" in out
    assert "Manifest: 4 of 4 file hashes match" in out


def test_a_good_export_passes_with_the_key_given_separately(export, tmp_path, key):
    pem = tmp_path / "published.pem"
    pem.write_bytes(public_pem(key))
    assert run("log", export, "--key", pem).returncode == 0


def test_an_export_whose_key_is_not_the_published_one_fails(export, tmp_path):
    pem = tmp_path / "published.pem"
    pem.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    assert_caught(run("log", export, "--key", pem), "is not the key given with --key")


def edit_entry(export: Path, index: int, change, rehash: bool) -> None:
    lines = read_lines(export / "entries.jsonl")
    row = json.loads(lines[index])
    change(row["entry"])
    if rehash:
        row["leaf_hash"] = merkle.leaf_hash(canonical(row["entry"])).hex()
    lines[index] = json.dumps(row, ensure_ascii=False) + "\n"
    write_lines(export / "entries.jsonl", lines)
    seal(export)


def test_an_edited_entry_is_caught_by_its_leaf_hash(export):
    edit_entry(export, 4, lambda e: e["payload"].update(unit=101), rehash=False)
    assert_caught(
        run("log", export), "entries.jsonl line 5 (index 4): leaf hash does not match the entry"
    )


def test_an_edited_entry_with_a_recomputed_leaf_hash_is_caught_by_the_signed_heads(export):
    edit_entry(export, 1, lambda e: e["payload"].update(unit=109), rehash=True)
    out = run("log", export)
    assert_caught(out, "(size 4): its root is not the root of the entries it covers")
    assert "leaf hash does not match" not in out.stdout
    assert "(size 1): its root" not in out.stdout  # the head before the edit is fine


def test_reordered_lines_are_caught(export):
    lines = read_lines(export / "entries.jsonl")
    lines[2], lines[3] = lines[3], lines[2]
    write_lines(export / "entries.jsonl", lines)
    seal(export)
    assert_caught(run("log", export), "line 3 (index 2): says index 3", "removed, added")


def test_reordered_lines_with_renumbered_indexes_are_caught_by_the_roots(export):
    lines = [json.loads(line) for line in read_lines(export / "entries.jsonl")]
    lines[2], lines[3] = lines[3], lines[2]
    for i, row in enumerate(lines):
        row["index"] = i
    write_lines(export / "entries.jsonl", [json.dumps(r, ensure_ascii=False) + "\n" for r in lines])
    seal(export)
    assert_caught(run("log", export), "(size 4): its root is not the root")


def test_a_removed_line_is_caught(export):
    lines = read_lines(export / "entries.jsonl")
    del lines[6]
    write_lines(export / "entries.jsonl", lines)
    seal(export)
    assert_caught(run("log", export), "line 7 (index 6): says index 7", "the export was cut")


def test_a_duplicated_line_is_caught(export):
    lines = read_lines(export / "entries.jsonl")
    lines.insert(3, lines[2])
    write_lines(export / "entries.jsonl", lines)
    seal(export)
    assert_caught(run("log", export), "line 4 (index 3): says index 2")


def test_a_truncated_tail_is_caught(export):
    lines = read_lines(export / "entries.jsonl")
    write_lines(export / "entries.jsonl", lines[:-3])
    seal(export)
    assert_caught(
        run("log", export), "covers 15 entries but the export has 12", "entries 12..14 are missing"
    )


def test_an_extra_line_is_caught(export):
    extra = entry(15, "confirm", 32, family=12, rank=5, unit=110)
    row = {"index": 15, "leaf_hash": merkle.leaf_hash(canonical(extra)).hex(), "entry": extra}
    with (export / "entries.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    seal(export)
    assert_caught(run("log", export), "entries 15..15 are not covered by any signed head")


def edit_head(export: Path, line: int, new_head: dict) -> None:
    lines = read_lines(export / "heads.jsonl")
    lines[line] = json.dumps(new_head) + "\n"
    write_lines(export / "heads.jsonl", lines)
    seal(export)


def test_a_head_with_a_bad_signature_is_caught(export):
    head = json.loads(read_lines(export / "heads.jsonl")[2])
    sig = bytearray(base64.b64decode(head["signature"]))
    sig[10] ^= 1
    edit_head(export, 2, {**head, "signature": base64.b64encode(bytes(sig)).decode()})
    assert_caught(run("log", export), "heads.jsonl line 3: the signature is not valid")


def test_a_head_whose_size_was_changed_fails_its_signature(export):
    head = json.loads(read_lines(export / "heads.jsonl")[1])
    edit_head(export, 1, {**head, "size": 5})
    assert_caught(run("log", export), "heads.jsonl line 2: the signature is not valid")


def test_a_head_signed_by_another_key_is_caught(export):
    entries, _ = scenario()
    other = Ed25519PrivateKey.generate()
    foreign = heads_for(other, entries, SIZES)[3]
    edit_head(export, 3, foreign)
    assert_caught(run("log", export), f"heads.jsonl line 4: signed by key '{key_id(other)}'")
    # and with our key id written on it, the signature does not verify
    edit_head(
        export,
        3,
        {**foreign, "key_id": json.loads(read_lines(export / "heads.jsonl")[0])["key_id"]},
    )
    assert_caught(run("log", export), "heads.jsonl line 4: the signature is not valid")


def test_two_heads_that_are_not_consistent_are_caught(tmp_path, key):
    """The log signed a tree of size 4 and later one of size 15 that does not extend it (entry
    1 rewritten in between): each head is validly signed, but they cannot both be true."""
    entries, carts = scenario()
    forked = copy.deepcopy(entries)
    forked[1]["payload"]["unit"] = 109
    signed = heads_for(key, forked, [1, 4]) + heads_for(key, entries, [8, 15])
    # re-signed with increasing times, as one sequencer would have signed them
    heads = [
        sign_head(key, h["size"], bytes.fromhex(h["root"]), T0 + timedelta(seconds=10 + i))
        for i, h in enumerate(signed)
    ]
    folder = write_export(tmp_path / "x", key, entries, carts, heads)
    assert_caught(
        run("log", folder),
        "heads.jsonl line 3 (size 8): not consistent with the head before it (size 4)",
        "heads.jsonl line 2 (size 4): its root is not the root",
    )


def test_heads_out_of_order_are_caught(export):
    lines = read_lines(export / "heads.jsonl")
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(export / "heads.jsonl", lines)
    seal(export)
    assert_caught(run("log", export), "heads are not ordered by size, then time")


def test_a_replay_mismatch_is_caught(tmp_path, key):
    """Correctly logged and signed, but family 6 was given unit 102, which family 2 had
    already confirmed: the replay gives it 105."""
    entries, carts = scenario()
    entries[6]["payload"]["unit"] = 102
    folder = write_export(tmp_path / "x", key, entries, carts)
    assert_caught(
        run("log", folder), "index 6: replay gives family 6 unit 105, the log records 102"
    )


def test_the_replay_honours_withdraw_and_restore(tmp_path, key):
    """Family 4 giving the withdrawn 103 would be wrong; family 10 getting the restored 103 is
    right: each turned the other way is caught."""
    entries, carts = scenario()
    entries[4]["payload"]["unit"] = 103
    folder = write_export(tmp_path / "a", key, entries, carts)
    assert_caught(
        run("log", folder), "index 4: replay gives family 4 unit 104, the log records 103"
    )
    entries, carts = scenario()
    entries[12]["payload"]["unit"] = 107
    folder = write_export(tmp_path / "b", key, entries, carts)
    assert_caught(
        run("log", folder), "index 12: replay gives family 10 unit 103, the log records 107"
    )


def test_families_out_of_rank_order_are_caught(tmp_path, key):
    entries, carts = scenario()
    entries[6]["payload"]["rank"] = 2
    folder = write_export(tmp_path / "x", key, entries, carts)
    assert_caught(run("log", folder), "index 6: family 6 (rank 2) processed after rank 5")


def test_a_cart_that_differs_from_the_close_is_caught(tmp_path, key):
    entries, carts = scenario()
    carts[31]["4"] = [104, 101]
    folder = write_export(tmp_path / "x", key, entries, carts)
    assert_caught(
        run("log", folder), "index 4: family 4's cart [101, 103, 104] is not its cart at the close"
    )


def test_a_closed_session_without_carts_is_caught(tmp_path, key):
    entries, carts = scenario()
    del carts[32]
    folder = write_export(tmp_path / "x", key, entries, carts)
    assert_caught(run("log", folder), "has no line for closed session 32")


def test_a_manifest_hash_mismatch_is_caught(export):
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["files"]["carts.jsonl"] = "0" * 64
    (export / "manifest.json").write_text(json.dumps(manifest))
    assert_caught(
        run("log", export), "carts.jsonl: its SHA-256 differs from the one in manifest.json"
    )


def test_a_file_changed_after_the_manifest_is_caught(export):
    with (export / "heads.jsonl").open("a") as f:
        f.write(read_lines(export / "heads.jsonl")[-1])
    assert_caught(run("log", export), "heads.jsonl: its SHA-256 differs")


def test_malformed_files_are_problems_not_crashes(export):
    (export / "entries.jsonl").write_text('{"index": 0, "index": 1}\n')
    seal(export)
    result = run("log", export)
    assert_caught(result, "entries.jsonl line 1: not valid JSON (duplicate key 'index')")
    assert "Traceback" not in result.stderr


# --- `verify.py receipt` -------------------------------------------------------------------------


def make_receipt(key, index: int = 12, size: int = 15) -> dict:
    entries, _ = scenario()
    stored = tree_of(entries)
    head = sign_head(key, size, merkle.tree_root(size, stored), T0 + timedelta(seconds=30))
    return {
        "log": LOG,
        "index": index,
        "leaf_hash": merkle.leaf_hash(canonical(entries[index])).hex(),
        "code": merkle.leaf_hash(canonical(entries[index])).hex()[:10],
        "entry": entries[index],
        "head": head,
        "inclusion": [h.hex() for h in merkle.inclusion_proof(index, size, stored)],
    }


def check_receipt(tmp_path, key, receipt: dict, name: str = "receipt.json"):
    (tmp_path / name).write_text(json.dumps(receipt, ensure_ascii=False), "utf-8")
    pem = tmp_path / "key.pem"
    pem.write_bytes(public_pem(key))
    return run("receipt", tmp_path / name, "--key", pem)


def test_a_good_receipt_passes(tmp_path, key):
    for index, size in [(12, 15), (0, 1), (3, 4), (7, 8), (14, 15)]:
        result = check_receipt(tmp_path, key, make_receipt(key, index, size))
        assert result.returncode == 0, result.stdout
        assert f"entry {index} is in the signed tree of size {size}" in result.stdout


def test_a_tampered_receipt_fails(tmp_path, key):
    good = make_receipt(key)
    edited = copy.deepcopy(good)
    edited["entry"]["payload"]["unit"] = 107
    assert_caught(check_receipt(tmp_path, key, edited), "index 12: leaf hash does not match")

    edited = copy.deepcopy(edited)
    edited["leaf_hash"] = merkle.leaf_hash(canonical(edited["entry"])).hex()
    assert_caught(check_receipt(tmp_path, key, edited), "inclusion proof does not verify")

    proof = copy.deepcopy(good)
    proof["inclusion"][1] = proof["inclusion"][1][:-1] + (
        "0" if proof["inclusion"][1][-1] != "0" else "1"
    )
    assert_caught(check_receipt(tmp_path, key, proof), "inclusion proof does not verify")

    short = {**good, "inclusion": good["inclusion"][:-1]}
    assert_caught(check_receipt(tmp_path, key, short), "inclusion proof does not verify")

    moved = {**good, "index": 13}
    assert_caught(check_receipt(tmp_path, key, moved), "inclusion proof does not verify")

    head = {**good["head"], "root": merkle.EMPTY_ROOT.hex()}
    assert_caught(check_receipt(tmp_path, key, {**good, "head": head}), "signature is not valid")

    other = Ed25519PrivateKey.generate()
    assert_caught(check_receipt(tmp_path, key, make_receipt(other)), "signed by key")

    pending = {**good, "head": None, "inclusion": []}
    assert_caught(check_receipt(tmp_path, key, pending), "no signed head yet")

    wrong_log = {**good, "log": "anju-ledger/round/8"}
    assert_caught(check_receipt(tmp_path, key, wrong_log), "the entry's round is not this log's")


# --- `verify.py consistency` ---------------------------------------------------------------------


def check_consistency(tmp_path, key, old: dict, new: dict, proof: list[str]):
    for name, value in [("old.json", old), ("new.json", new), ("proof.json", proof)]:
        (tmp_path / name).write_text(json.dumps(value))
    pem = tmp_path / "key.pem"
    pem.write_bytes(public_pem(key))
    return run(
        "consistency",
        tmp_path / "old.json",
        tmp_path / "new.json",
        tmp_path / "proof.json",
        "--key",
        pem,
    )


def consistency_case(key, first: int, second: int, entries=None):
    entries = entries or scenario()[0]
    stored = tree_of(entries)
    old, new = heads_for(key, entries, [first, second])
    proof = [h.hex() for h in merkle.consistency_proof(first, second, stored)]
    return old, new, proof


def test_a_good_consistency_proof_passes(tmp_path, key):
    for first, second in [(4, 15), (1, 15), (8, 15), (7, 12), (15, 15)]:
        old, new, proof = consistency_case(key, first, second)
        result = check_consistency(tmp_path, key, old, new, proof)
        assert result.returncode == 0, result.stdout
        assert "the new tree extends the old one" in result.stdout


def test_a_bad_consistency_proof_fails(tmp_path, key):
    old, new, proof = consistency_case(key, 5, 15)
    flipped = [proof[0][:-1] + ("0" if proof[0][-1] != "0" else "1"), *proof[1:]]
    assert_caught(check_consistency(tmp_path, key, old, new, flipped), "does not verify")
    assert_caught(check_consistency(tmp_path, key, old, new, proof[:-1]), "does not verify")
    assert_caught(check_consistency(tmp_path, key, old, new, proof[::-1]), "does not verify")
    assert_caught(check_consistency(tmp_path, key, new, old, proof), "old head is larger")

    forked_entries = copy.deepcopy(scenario()[0])
    forked_entries[2]["payload"]["unit"] = 110
    forked_new = consistency_case(key, 5, 15, forked_entries)[1]
    assert_caught(check_consistency(tmp_path, key, old, forked_new, proof), "does not verify")

    bad_sig = {**new, "signature": old["signature"]}
    assert_caught(check_consistency(tmp_path, key, old, bad_sig, proof), "new head: the signature")

    other = Ed25519PrivateKey.generate()
    o_old, o_new, o_proof = consistency_case(other, 5, 15)
    assert_caught(
        check_consistency(tmp_path, key, o_old, o_new, o_proof), "old head: signed by key"
    )


# --- the tool's own Merkle code and its imports ---------------------------------------------------


def load_tool():
    spec = importlib.util.spec_from_file_location("anju_verify_tool", VERIFY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tools_merkle_code_agrees_with_core_merkle():
    """Two implementations written separately: the tool's roots and proofs equal core.merkle's,
    its verifiers accept core.merkle's proofs and reject them altered."""
    tool = load_tool()
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(40)]
    stored = merkle.all_stored_hashes(leaves)
    for n in range(1, 41):
        tree = tool.MerkleTree(leaves[:n])
        root = merkle.tree_root(n, stored)
        assert tree.root(n) == root
        for i in range(n):
            proof = merkle.inclusion_proof(i, n, stored)
            assert tree.inclusion_path(i, n) == proof
            assert tool.verify_inclusion(i, n, leaves[i], proof, root)
            assert not tool.verify_inclusion(i, n, leaves[(i + 1) % 40], proof, root)
            if proof:
                assert not tool.verify_inclusion(i, n, leaves[i], proof[:-1], root)
                assert not tool.verify_inclusion(i, n, leaves[i], [*proof, proof[0]], root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, stored)
            assert tree.consistency_proof(m, n) == proof
            old = merkle.tree_root(m, stored)
            assert tool.verify_consistency(m, n, old, root, proof)
            assert not tool.verify_consistency(m, n, old, root, [*proof, root])
            if proof:
                assert not tool.verify_consistency(m, n, old, root, proof[:-1])
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not tool.verify_consistency(m, n, old, root, bad)
            if m < n:
                assert not tool.verify_consistency(m, n, leaves[0], root, proof) or m == 1


def test_the_tool_imports_only_the_standard_library_and_cryptography():
    tree = ast.parse(VERIFY.read_text("utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            raise AssertionError("dynamic import")
    assert "cryptography" in imported
    # pyHanko (with its asn1crypto and certvalidator) is optional, for `package`'s PDF
    # signatures: allowed only inside a function's `try` that catches ImportError.
    optional = {"pyhanko", "pyhanko_certvalidator", "asn1crypto"}
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers
        ):
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom):
                    guarded.add(inner.module.split(".")[0])
                elif isinstance(inner, ast.Import):
                    guarded.update(alias.name.split(".")[0] for alias in inner.names)
    module_level = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not module_level & optional
    assert imported & optional <= guarded
    outside = {name for name in imported - {"cryptography", "__future__"} - guarded} - set(
        sys.stdlib_module_names
    )
    assert outside == set()
    assert not imported & {"core", "selection", "django", "config"}
