"""The portal's Ed25519 signing key, and the exact statements it signs.

Two kinds of statement are signed, each the UTF-8 bytes of canonical JSON (the
same rules as the chain: sorted keys, ``(",", ":")`` separators, no ASCII escaping):

- a **checkpoint**: ``{"type": "hitl-audit-checkpoint/1", "seq": N, "hash": "...",
  "signed_at": "YYYY-MM-DDTHH:MM:SS.ffffffZ"}``;
- an **export manifest**: the manifest object without its ``signature`` member
  (its ``format`` member, ``hitl-audit-export/1``, keeps the two kinds apart).

``tools/verify_audit_export.py`` rebuilds both byte for byte with the standard
library alone; keep the two in step.

The key comes from ``HITL_AUDIT_SIGNING_KEY`` (PEM, PKCS#8) or the file named by
``HITL_AUDIT_SIGNING_KEY_FILE``. The embedded default creates that file (mode
0600) on first use; production never invents a key: a missing one is an error.
Keys that signed earlier checkpoints and were since replaced stay trusted for
verification through the optional ``HITL_AUDIT_RETIRED_PUBLIC_KEYS`` setting
(hex, base64 or PEM public keys).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit.canonical import canonical_json, normalize

logger = logging.getLogger(__name__)

CHECKPOINT_TYPE = "hitl-audit-checkpoint/1"
EXPORT_FORMAT = "hitl-audit-export/1"
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows.
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


@dataclass(frozen=True)
class PublicKeyInfo:
    """The verification key in the forms people and tools ask for."""

    raw: bytes

    @property
    def hex(self) -> str:
        return self.raw.hex()

    @property
    def base64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the raw key: what checkpoints record as ``key_fingerprint``."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def pem(self) -> str:
        body = base64.b64encode(SPKI_PREFIX + self.raw).decode("ascii")
        return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"

    def as_dict(self) -> dict[str, str]:
        return {
            "algorithm": "Ed25519",
            "raw_hex": self.hex,
            "raw_base64": self.base64,
            "fingerprint_sha256": self.fingerprint,
            "pem": self.pem,
        }


def checkpoint_statement(*, seq: int, hash: str, signed_at: Any) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical_json(
        {"type": CHECKPOINT_TYPE, "seq": seq, "hash": hash, "signed_at": normalize(signed_at)}
    ).encode("utf-8")


def manifest_statement(manifest: dict[str, Any]) -> bytes:
    """The bytes an export manifest's signature covers: the manifest without ``signature``."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"}).encode("utf-8")


def _generate_key_file(path: Path) -> None:
    """Create a new private key file readable by its owner only (the embedded default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    logger.warning("generated a new audit signing key at %s; publish its public key (/audit/public-key/)", path)


@lru_cache(maxsize=4)
def _load_private_key(pem: str | None, path: str, allow_generate: bool) -> Ed25519PrivateKey:
    if pem:
        data = pem.encode("utf-8")
        origin = "HITL_AUDIT_SIGNING_KEY"
    else:
        key_path = Path(path)
        if not key_path.exists():
            if not allow_generate:
                raise ImproperlyConfigured(
                    "No audit signing key: set HITL_AUDIT_SIGNING_KEY (PEM, PKCS#8 Ed25519) or provide the file "
                    f"{key_path} (HITL_AUDIT_SIGNING_KEY_FILE)."
                )
            _generate_key_file(key_path)
        data = key_path.read_bytes()
        origin = str(key_path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"The audit signing key in {origin} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"The audit signing key in {origin} is not an Ed25519 key.")
    return key


def signing_key() -> Ed25519PrivateKey:
    """The private key that signs checkpoints and export manifests."""
    return _load_private_key(
        settings.HITL_AUDIT_SIGNING_KEY,
        str(settings.HITL_AUDIT_SIGNING_KEY_FILE),
        not settings.PRODUCTION,
    )


def public_key() -> PublicKeyInfo:
    """The current verification key (published on /audit/public-key/ and in exports)."""
    raw = signing_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PublicKeyInfo(raw)


def sign(message: bytes) -> str:
    """Ed25519 signature of ``message``, hex."""
    return signing_key().sign(message).hex()


def parse_public_key(text: str) -> bytes:
    """A raw 32-byte Ed25519 public key from hex, base64 or a PEM block."""
    value = text.strip()
    if "BEGIN PUBLIC KEY" in value:
        body = "".join(line for line in value.splitlines() if line and not line.startswith("-----"))
        der = base64.b64decode(body)
        if len(der) != len(SPKI_PREFIX) + 32 or not der.startswith(SPKI_PREFIX):
            raise ValueError("not an Ed25519 public key (SubjectPublicKeyInfo)")
        return der[len(SPKI_PREFIX):]
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("a public key must be hex, base64 or PEM") from exc
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def trusted_public_keys() -> dict[str, bytes]:
    """Keys whose signatures verification accepts, by fingerprint: the current one and retired ones."""
    keys = [public_key().raw]
    for text in settings.HITL_AUDIT_RETIRED_PUBLIC_KEYS:
        keys.append(parse_public_key(text))
    return {hashlib.sha256(raw).hexdigest(): raw for raw in keys}


def verify_signature(raw_public_key: bytes, message: bytes, signature_hex: str) -> bool:
    """True when ``signature_hex`` is a valid Ed25519 signature of ``message`` by that key."""
    try:
        signature = bytes.fromhex(signature_hex)
        Ed25519PublicKey.from_public_bytes(raw_public_key).verify(signature, message)
    except (ValueError, InvalidSignature):
        return False
    return True


__all__ = [
    "CHECKPOINT_TYPE",
    "EXPORT_FORMAT",
    "PublicKeyInfo",
    "checkpoint_statement",
    "manifest_statement",
    "parse_public_key",
    "public_key",
    "sign",
    "signing_key",
    "trusted_public_keys",
    "verify_signature",
]
