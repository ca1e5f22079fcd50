#!/usr/bin/env python3
"""Verify an audit export of the HITL Governance Portal offline.

    python3 tools/verify_audit_export.py EXPORT.jsonl --key PUBLIC_KEY [--witness WITNESS.jsonl]
    python3 tools/verify_audit_export.py EXPORT.jsonl --no-signatures

Standard library only (Python 3.11+): no Django, no database, no network. It
checks, line by line, that the export (format ``hitl-audit-export/1``):

- starts with a manifest, and its events run in ``seq`` order without a gap from
  the manifest's ``first_prev_hash`` (an export that starts mid-chain verifies from
  there), each linked to the previous one by ``prev_hash``;
- has, for each event, a payload whose SHA-256 is ``payload_sha256`` (a null
  payload was lawfully purged; its hash still anchors the event) and an envelope
  whose canonical JSON hashes to ``hash``: sorted keys, separators ``,`` and ``:``,
  UTF-8 without ASCII escaping, over the fields listed in ``ENVELOPE_FIELDS``;
- matches its manifest (count, first and last hash) and every signed checkpoint in
  it (the event at the checkpoint's seq has the checkpoint's hash).

With ``--key`` (the portal's public key, from ``/audit/public-key/``: a PEM file, or
the raw key as hex or base64, given directly or in a file) it also verifies the
Ed25519 signature of every checkpoint and of the manifest, with the small pure
Python implementation of RFC 8032 below. Without ``--key`` it refuses to run (exit
2) unless ``--no-signatures`` says explicitly that only the hash chain is to be
checked: a key taken from the export itself proves nothing, and an unsigned check
must not pass for a signed one by accident.

With ``--witness`` (a copy of the portal's external witness file, ``audit-witness.jsonl``:
one signed checkpoint per line) every witnessed checkpoint inside the exported range
must match the exported event at its seq, and, with ``--key``, carry a valid
signature; witnessed checkpoints after the export are reported.

Prints ``OK`` and exits 0, or names the first bad line and seq and exits 1.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

FORMAT = "hitl-audit-export/1"
CHECKPOINT_TYPE = "hitl-audit-checkpoint/1"
GENESIS_HASH = "0" * 64
# Must stay equal to audit/canonical.py's ENVELOPE_FIELDS.
ENVELOPE_FIELDS = (
    "seq", "at", "actor_type", "actor_id", "actor_name", "action", "object_type", "object_id", "object_label",
    "system_id", "case_id", "request_id", "reason", "payload_sha256", "prev_hash",
)
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- Ed25519 verification (RFC 8032, section 5.1), pure Python ----------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the group order
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y: int, sign: int) -> int | None:
    """Section 5.1.3: the x coordinate for y and the sign bit (None: not on the curve)."""
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _point_add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Section 5.1.4: addition in extended homogeneous coordinates (X, Y, Z, T)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % P, g * h % P, f * g % P, e * h % P


def _point_mul(scalar: int, point: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    result = (0, 1, 1, 0)  # the neutral element
    while scalar > 0:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _point_equal(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _decompress(data: bytes) -> tuple[int, int, int, int] | None:
    """Section 5.1.3: decode a 32-byte point."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


_BY = 4 * pow(5, P - 2, P) % P
_BX = _recover_x(_BY, 0)
assert _BX is not None
BASE = (_BX, _BY, 1, _BX * _BY % P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Section 5.1.7: is ``signature`` a valid signature of ``message`` by ``public``?"""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    return _point_equal(_point_mul(s, BASE), _point_add(r, _point_mul(k, a)))


# --- Keys ---------------------------------------------------------------------------------


def load_key(value: str) -> bytes:
    """The raw 32-byte public key from a PEM file, or hex/base64 (directly or in a file)."""
    path = Path(value)
    text = path.read_text(encoding="utf-8") if path.is_file() else value
    text = text.strip()
    if "BEGIN PUBLIC KEY" in text:
        body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
        der = base64.b64decode(body)
        if len(der) != len(SPKI_PREFIX) + 32 or not der.startswith(SPKI_PREFIX):
            raise ValueError("the PEM file does not hold an Ed25519 public key")
        return der[len(SPKI_PREFIX):]
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError("the key must be a PEM file, or hex or base64") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return raw


# --- Verification -------------------------------------------------------------------------


class Failure(Exception):
    def __init__(self, line: int, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line, self.seq, self.problem = line, seq, problem

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "the witness"
        where += f", seq {self.seq}" if self.seq is not None else ""
        return f"FAIL at {where}: {self.problem}"


def _signature_ok(key: bytes, message: bytes, signature_hex: Any) -> bool:
    try:
        signature = bytes.fromhex(signature_hex)
    except (TypeError, ValueError):
        return False
    return ed25519_verify(key, message, signature)


def load_witness(path: Path, key: bytes | None) -> dict[int, str]:
    """A witness file → {seq: hash}; with a key each record's signature is checked."""
    heads: dict[int, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                seq, hash_ = record["seq"], record["hash"]
                statement = canonical(
                    {"type": CHECKPOINT_TYPE, "seq": seq, "hash": hash_, "signed_at": record["signed_at"]}
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise Failure(0, None, f"witness line {number} is not a checkpoint record ({exc})") from exc
            if record.get("type") != CHECKPOINT_TYPE or not isinstance(seq, int):
                raise Failure(0, None, f"witness line {number} is not a {CHECKPOINT_TYPE} record")
            if key is not None and not _signature_ok(key, statement, record.get("signature")):
                raise Failure(0, seq, f"witness line {number}: the checkpoint at seq {seq} has an invalid signature")
            if heads.get(seq, hash_) != hash_:
                raise Failure(0, seq, f"the witness holds two different heads for seq {seq}: the chain was rewritten")
            heads[seq] = hash_
    return heads


def verify(path: Path, key: bytes | None, witness: dict[int, str] | None = None) -> dict[str, Any]:
    """Verify the export at ``path``; raise ``Failure`` naming the first bad line."""
    summary: dict[str, Any] = {"events": 0, "checkpoints": 0, "purged_payloads": 0, "other_records": 0,
                               "witnessed": 0}
    witness = witness or {}
    with path.open("rb") as handle:
        first = handle.readline()
        try:
            manifest = json.loads(first.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Failure(1, None, f"the first line is not a JSON manifest ({exc})") from exc
        if not isinstance(manifest, dict) or manifest.get("record") != "manifest" or manifest.get("format") != FORMAT:
            raise Failure(1, None, f"the first line is not a {FORMAT} manifest")
        checkpoints = {cp["seq"]: cp for cp in manifest.get("checkpoints") or []}
        if key is not None:
            fingerprint = hashlib.sha256(key).hexdigest()
            unsigned = {k: v for k, v in manifest.items() if k != "signature"}
            if not _signature_ok(key, canonical(unsigned), manifest.get("signature")):
                raise Failure(1, None, "the manifest's signature does not verify with the given key")
            for seq, cp in sorted(checkpoints.items()):
                if cp.get("key_fingerprint") != fingerprint:
                    raise Failure(1, seq, f"checkpoint at seq {seq} was signed by another key "
                                          f"({str(cp.get('key_fingerprint'))[:16]}…)")
                statement = canonical(
                    {"type": CHECKPOINT_TYPE, "seq": seq, "hash": cp["hash"], "signed_at": cp["signed_at"]}
                )
                if not _signature_ok(key, statement, cp.get("signature")):
                    raise Failure(1, seq, f"checkpoint at seq {seq} has an invalid signature")
        first_seq = manifest.get("range", {}).get("first_seq")
        expected_seq = first_seq
        prev_hash = manifest.get("first_prev_hash")
        last_hash = None
        line_no = 1
        events_done = False
        for raw in handle:
            line_no += 1
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise Failure(line_no, expected_seq, f"not valid JSON ({exc})") from exc
            kind = record.get("record") if isinstance(record, dict) else None
            if kind != "event":
                if kind in ("case", "history"):
                    events_done = True
                    summary["other_records"] += 1
                    continue
                raise Failure(line_no, expected_seq, f"unknown record type {kind!r}")
            if events_done:
                raise Failure(line_no, record.get("seq"), "an event after the archive records")
            seq = record.get("seq")
            if seq != expected_seq:
                raise Failure(line_no, seq, f"sequence gap: expected seq {expected_seq}, found {seq}")
            if record.get("prev_hash") != prev_hash:
                raise Failure(line_no, seq, "prev_hash does not match the previous event's hash")
            payload = record.get("payload")
            if payload is None:
                summary["purged_payloads"] += 1
            elif not isinstance(payload, str) or (
                hashlib.sha256(payload.encode("utf-8")).hexdigest() != record.get("payload_sha256")
            ):
                raise Failure(line_no, seq, "payload does not match its payload_sha256")
            try:
                envelope = {name: record[name] for name in ENVELOPE_FIELDS}
            except KeyError as exc:
                raise Failure(line_no, seq, f"missing envelope field {exc}") from exc
            if hashlib.sha256(canonical(envelope)).hexdigest() != record.get("hash"):
                raise Failure(line_no, seq, "event hash does not match its contents")
            checkpoint = checkpoints.get(seq)
            if checkpoint is not None:
                if checkpoint["hash"] != record["hash"]:
                    raise Failure(line_no, seq, f"the event differs from the signed checkpoint at seq {seq}")
                summary["checkpoints"] += 1
            witnessed = witness.get(seq)
            if witnessed is not None:
                if witnessed != record["hash"]:
                    raise Failure(line_no, seq, f"the event differs from the witnessed checkpoint at seq {seq}")
                summary["witnessed"] += 1
            prev_hash = last_hash = record["hash"]
            expected_seq += 1
            summary["events"] += 1
    count = manifest.get("count", 0)
    if summary["events"] != count:
        missing_seq = expected_seq if summary["events"] < count else None
        raise Failure(line_no + 1, missing_seq,
                      f"the manifest announces {count} events, the file holds {summary['events']} (cut short?)")
    if count and (last_hash != manifest.get("last_hash")):
        raise Failure(line_no, expected_seq - 1, "the last event's hash differs from the manifest's last_hash")
    unchecked = [seq for seq in checkpoints if summary["events"] == 0 or not first_seq <= seq < expected_seq]
    if unchecked:
        raise Failure(1, min(unchecked), f"checkpoint at seq {min(unchecked)} lies outside the exported events")
    summary.update(first_seq=first_seq if count else None, last_seq=expected_seq - 1 if count else None,
                   last_hash=last_hash, signatures="verified" if key is not None else "not checked (--no-signatures)")
    later = [seq for seq in witness if seq >= expected_seq]
    summary["witnessed_after"] = max(later) if later else None
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a HITL portal audit export (JSON Lines) offline.")
    parser.add_argument("file", type=Path, help="the export (.jsonl)")
    parser.add_argument("--key", help="the portal's public key: a PEM file, or the raw key as hex or base64")
    parser.add_argument("--no-signatures", action="store_true",
                        help="check the hash chain only, without a key (signatures are then NOT verified)")
    parser.add_argument("--witness", type=Path,
                        help="a copy of the portal's witness file (audit-witness.jsonl) to compare with")
    args = parser.parse_args(argv)
    if not args.key and not args.no_signatures:
        print("ERROR: give the portal's public key (--key), or --no-signatures to check the hash chain only",
              file=sys.stderr)
        return 2
    try:
        key = load_key(args.key) if args.key else None
    except (OSError, ValueError) as exc:
        print(f"ERROR: cannot read the key: {exc}", file=sys.stderr)
        return 2
    try:
        witness = load_witness(args.witness, key) if args.witness else None
        summary = verify(args.file, key, witness)
    except OSError as exc:
        print(f"ERROR: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except Failure as failure:
        print(str(failure))
        return 1
    span = f"seq {summary['first_seq']}–{summary['last_seq']}" if summary["events"] else "no events"
    print(
        f"OK: {summary['events']} events ({span}), {summary['checkpoints']} checkpoints matched, "
        f"{summary['purged_payloads']} payloads purged or omitted, signatures {summary['signatures']}; "
        f"last hash {summary['last_hash'] or '-'}"
    )
    if args.witness:
        after = summary["witnessed_after"]
        print(f"witness: {summary['witnessed']} witnessed checkpoints matched"
              + (f"; it holds checkpoints after this export, up to seq {after}" if after else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
