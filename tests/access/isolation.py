"""What the isolation tests know about their tenants: who reads which sandbox account, what
each may be told, and the strings no answer to it may carry.

Three tenants over three accounts per provider, chosen so that isolation is tried on real
overlaps (``tests/access/test_isolation.py`` says why each is there):

- ``acme_alpha`` reads account 0 of every provider;
- ``bravo_brands`` reads account 1 of every provider;
- ``charlie_calls`` reads account 2 of Twilio and account 0 of Bird (the Bird account
  ``acme_alpha`` reads too), and has no SignalWire.

The names are long on purpose: the tests look for them in every answer, and a short name
could turn up by chance in a random token.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from app.access.keys import new_key
from app.sandbox import Sandbox, SandboxConfig, SandboxRecording
from app.sandbox.config import PROVIDERS
from tests.access.support import TenantSpec, write_config

#: Accounts the sandbox serves per provider (charlie_calls reads the third Twilio one).
ACCOUNTS_PER_PROVIDER = 3


@dataclass(frozen=True)
class Member:
    """One tenant of the test gateway: its name, API key, and sandbox account per provider."""

    name: str
    key: str
    accounts: Mapping[str, int]

    def spec(self) -> TenantSpec:
        return TenantSpec(self.key, accounts=self.accounts)


ALPHA = Member("acme_alpha", new_key(), {"twilio": 0, "signalwire": 0, "bird": 0})
BRAVO = Member("bravo_brands", new_key(), {"twilio": 1, "signalwire": 1, "bird": 1})
CHARLIE = Member("charlie_calls", new_key(), {"twilio": 2, "bird": 0})
MEMBERS = (ALPHA, BRAVO, CHARLIE)


def write_members(path: Path, config: SandboxConfig, members: Iterable[Member]) -> dict[str, str]:
    """The gateway config serving ``members``, and the environment that points at it."""
    return write_config(path, config, {member.name: member.spec() for member in members})


def credentials(authorization: str) -> str:
    """An ``Authorization`` value with a Basic pair decoded, so secrets in it can be seen."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return authorization
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return authorization


class World:
    """The sandbox's accounts and recordings as each member may see them."""

    def __init__(self, sandbox: Sandbox, members: Iterable[Member] = MEMBERS) -> None:
        self.members = tuple(members)
        #: Every recording a provider serves, by (provider, id). A soft-deleted Twilio
        #: recording is served to no one: it is in ``hidden`` (any other account's id is
        #: NOT_FOUND just the same).
        self.records: dict[tuple[str, str], SandboxRecording] = {}
        self.hidden: set[tuple[str, str]] = set()
        for record in sandbox.dataset.all_records():
            key = (record.provider, record.id)
            if record.status == "deleted":
                self.hidden.add(key)
            else:
                self.records[key] = record
        #: Per member, the account id it reads at each of its providers.
        self.accounts: dict[str, dict[str, str]] = {
            member.name: {p: sandbox.account(p, i) for p, i in member.accounts.items()}
            for member in self.members
        }
        # (description, value) of every account id and secret the sandbox serves.
        ids: list[tuple[str, str, str]] = []
        secrets: list[tuple[str, str, str]] = []
        for provider in PROVIDERS:
            for index, account in enumerate(sandbox.accounts(provider)):
                where = f"{provider} account {index}"
                ids.append((where, account.account, f"the id of {where}"))
                secrets.append((where, account.secret, f"the secret of {where}"))
                if account.api_key is not None:
                    ids.append((where, account.api_key, f"the API key of {where}"))
                if account.api_secret is not None:
                    secrets.append((where, account.api_secret, f"the API secret of {where}"))
                if provider != "bird":  # as they travel in a Basic Authorization header
                    pair = base64.b64encode(f"{account.account}:{account.secret}".encode())
                    secrets.append((where, pair.decode(), f"the Basic credentials of {where}"))
        self._ids = ids
        self._secrets = secrets

    def account(self, member: Member, provider: str) -> str | None:
        """The account ``member`` reads at ``provider``; None when it has none there."""
        return self.accounts[member.name].get(provider)

    def own(self, member: Member, provider: str, rid: str) -> bool:
        record = self.records.get((provider, rid))
        return record is not None and record.account == self.account(member, provider)

    def outcome(self, member: Member, provider: str, rid: str) -> str | None:
        """What asking for one recording must give ``member``: None (the recording), or the
        code of the error in its place."""
        if self.account(member, provider) is None:
            return "PROVIDER_NOT_CONFIGURED"
        return None if self.own(member, provider, rid) else "NOT_FOUND"

    def listing(self, member: Member, providers: Iterable[str]) -> set[tuple[str, str]]:
        """Every (provider, id) a full listing of ``providers`` must give ``member``."""
        return {
            (provider, rid)
            for (provider, rid), record in self.records.items()
            if provider in providers and record.account == self.account(member, provider)
        }

    def _mine(self, member: Member, where: str) -> bool:
        provider, _, index = where.split(" ")
        return member.accounts.get(provider) == int(index)

    def never_told(self, member: Member) -> list[tuple[str, str]]:
        """(what, value) of everything no answer to ``member`` may name: every secret (its own
        included), every account id of an account it does not read, every other tenant's name."""
        found = [(what, value) for _, value, what in self._secrets]
        found += [
            (what, value) for where, value, what in self._ids if not self._mine(member, where)
        ]
        found += [
            (f"the name of tenant {other.name}", other.name)
            for other in self.members
            if other != member
        ]
        return found

    def never_used_for(self, member: Member) -> list[tuple[str, str]]:
        """(what, value) of every account id and secret of accounts ``member`` does not read:
        none may appear in an upstream request made on its behalf."""
        return [
            (what, value)
            for where, value, what in self._ids + self._secrets
            if not self._mine(member, where)
        ]

    def secret(self, member: Member, provider: str) -> str:
        """The secret of the account ``member`` reads at ``provider``."""
        index = member.accounts[provider]
        return next(
            value
            for where, value, what in self._secrets
            if where == f"{provider} account {index}" and what.startswith("the secret")
        )
