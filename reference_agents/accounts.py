"""Mail accounts of one provider: addresses, salted scrypt password hashes, lookups."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Return ``scrypt$N$r$p$salt$hash`` (base64) for *password*."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return "scrypt${}${}${}${}${}".format(
        _SCRYPT_N,
        _SCRYPT_R,
        _SCRYPT_P,
        base64.b64encode(salt).decode("ascii"),
        base64.b64encode(digest).decode("ascii"),
    )


def verify_password(password: str, encoded: str) -> bool:
    """Check *password* against an ``scrypt$...`` hash in constant time."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True, slots=True)
class Account:
    """One mailbox owner. ``username`` logs in; ``address`` receives mail and may send as itself."""

    username: str
    address: str
    password_hash: str

    @property
    def local_part(self) -> str:
        return self.address.rsplit("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1].lower()


class AccountStore:
    """The accounts of one provider, looked up by login name or by address."""

    def __init__(self, accounts: Iterable[Account], local_domains: Iterable[str]) -> None:
        self._by_user: dict[str, Account] = {}
        self._by_address: dict[str, Account] = {}
        for account in accounts:
            self._by_user[account.username.lower()] = account
            self._by_address[account.address.lower()] = account
        self.local_domains = frozenset(d.lower() for d in local_domains)
        self._verified: dict[tuple[str, str], bool] = {}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_user.values())

    def verify(self, username: str, password: str) -> Account | None:
        """Return the account when *password* is right, else None. Results are memoised
        (scrypt is deliberately slow) keyed on the hash, so a changed password is re-checked."""
        account = self._by_user.get(username.lower())
        if account is None:
            # Spend the same time on unknown users as on known ones.
            verify_password(password, hash_password("x", salt=b"0" * 16))
            return None
        key = (account.password_hash, hashlib.sha256(password.encode("utf-8")).hexdigest())
        ok = self._verified.get(key)
        if ok is None:
            ok = verify_password(password, account.password_hash)
            self._verified[key] = ok
        return account if ok else None

    def by_address(self, address: str) -> Account | None:
        return self._by_address.get(address.lower())

    def by_username(self, username: str) -> Account | None:
        return self._by_user.get(username.lower())

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower().rstrip(".") in self.local_domains

    def is_local_address(self, address: str) -> bool:
        return "@" in address and self.is_local_domain(address.rsplit("@", 1)[1])
