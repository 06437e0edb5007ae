"""Password hashing for charge point Basic authentication (Security Profile 1/2).

PBKDF2-HMAC-SHA256 with a random 16-byte salt. The stored hash names its
algorithm and iteration count (``pbkdf2_sha256$<iterations>$<hex>``), so the
cost can be raised later without invalidating stored passwords. Plaintext is
never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os

ITERATIONS = 60_000


def hash_password(password: str, *, iterations: int = ITERATIONS) -> tuple[str, str]:
    """Return ``(password_hash, password_salt)`` for ``password`` with a fresh salt."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${digest.hex()}", salt.hex()


def verify_password(password: str, password_hash: str, password_salt: str) -> bool:
    """True when ``password`` matches; the comparison takes constant time."""
    try:
        algorithm, iterations, expected = password_hash.split("$")
        salt = bytes.fromhex(password_salt)
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, rounds)
    return hmac.compare_digest(digest.hex(), expected)
