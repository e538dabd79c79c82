"""Provisioning RabbitMQ for an agency directory: a vhost, the topology, one user per agency.

RabbitMQ users are cluster-wide, so each agency's user is named ``<vhost>/<OrganId>``
(:func:`~vbdt.exchange.routing.broker_user`): two deployments on one broker never share or
re-key each other's users. Each agency user may

- publish only to ``vbdt.exchange`` (``write``; never ``vbdt.dlx``, which only the broker feeds),
- read only its own inbox (``read`` on ``vbdt.inbox.<OrganId>``),
- configure nothing (the topology is the operator's),

and RabbitMQ checks the ``user_id`` of every message against the authenticated user, so a
package's publisher is known for certain. Every queue is bounded with ``reject-publish``
(:class:`~vbdt.exchange.transport.QueueLimits`). An existing user keeps its password unless
``rotate`` names it (or is ``True``): provisioning again, or another vhost, never locks out a
running agency. :func:`disable` locks one agency out (its user stays, without a password, tagged
``vbdt-disabled``, so provisioning again does not bring it back); rotating it enables it again.

Everything is one definitions document (:func:`definitions`, pure) loaded in one step
(:class:`~vbdt.exchange.rabbitadmin.RabbitAdmin`), rather than hundreds of ``rabbitmqctl``
calls, each of which starts an Erlang VM.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from vbdt.errors import TransportError, UsageError
from vbdt.exchange.rabbitadmin import RabbitAdmin
from vbdt.exchange.routing import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_KEY,
    DEAD_LETTER_QUEUE,
    EXCHANGE,
    broker_user,
    dead_queue_arguments,
    inbox_arguments,
    inbox_queue,
    organ_id_for_user,
    routing_key,
)
from vbdt.exchange.transport import DEFAULT_QUEUE_LIMITS, QueueLimits

__all__ = [
    "DISABLED_TAG",
    "IMPORT_CHUNK",
    "Provisioned",
    "agency_permissions",
    "definitions",
    "deprovision",
    "disable",
    "exact_alternation",
    "hash_password",
    "host_permissions",
    "host_user",
    "provision",
    "provision_host",
]

DISABLED_TAG = "vbdt-disabled"
"""Tag of an agency user that :func:`disable` locked out (no password; rotating it enables it again)."""

IMPORT_CHUNK = 500
"""Agencies per definitions document :func:`provision` imports: a broker creates quorum queues one
by one (tens of milliseconds each), and 10,000 inboxes in one import outlast rabbitmqctl's 300 s
(the management API's 60 s far sooner)."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def agency_permissions(organ_id: str) -> dict[str, str]:
    """The configure/write/read patterns of an agency's user: publish to the exchange, read its inbox."""
    return {"configure": "^$", "write": f"^{re.escape(EXCHANGE)}$", "read": f"^{re.escape(inbox_queue(organ_id))}$"}


def _exchange(name: str, vhost: str, kind: str) -> dict[str, Any]:
    return {"name": name, "vhost": vhost, "type": kind, "durable": True, "auto_delete": False, "internal": False, "arguments": {}}


def _queue(name: str, vhost: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": dict(arguments)}


def _binding(source: str, queue: str, key: str, vhost: str) -> dict[str, Any]:
    return {"source": source, "vhost": vhost, "destination": queue, "destination_type": "queue", "routing_key": key, "arguments": {}}


def definitions(organ_ids: Iterable[str], passwords: Mapping[str, str], *, vhost: str, admin: str = "guest",
                queue_limits: QueueLimits = DEFAULT_QUEUE_LIMITS) -> dict[str, Any]:
    """The whole provisioning as a RabbitMQ definitions document.

    Users are created (or re-keyed) only for the agencies in ``passwords``; every agency gets its
    permissions, inbox and binding."""
    ids = list(dict.fromkeys(str(o) for o in organ_ids))
    return {
        "vhosts": [{"name": vhost}],
        "users": [{"name": broker_user(vhost, o), "password_hash": hash_password(passwords[o]),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""} for o in ids if o in passwords],
        "permissions": [{"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]
        + [{"user": broker_user(vhost, o), "vhost": vhost, **agency_permissions(o)} for o in ids],
        "exchanges": [_exchange(EXCHANGE, vhost, "topic"), _exchange(DEAD_LETTER_EXCHANGE, vhost, "fanout")],
        "queues": [_queue(DEAD_LETTER_QUEUE, vhost, dead_queue_arguments(queue_limits))]
        + [_queue(inbox_queue(o), vhost, inbox_arguments(queue_limits)) for o in ids],
        "bindings": [_binding(DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, "", vhost), _binding(EXCHANGE, DEAD_LETTER_QUEUE, DEAD_LETTER_KEY, vhost)]
        + [_binding(EXCHANGE, inbox_queue(o), routing_key(o), vhost) for o in ids],
    }


@dataclass(frozen=True)
class Provisioned:
    """What :func:`provision` did. Only :attr:`urls` holds secrets: write it where only the agencies can read."""

    vhost: str
    urls: dict[str, str]
    """OrganId → AMQP URL with the password, for the users created or re-keyed now."""
    existing: list[str] = field(default_factory=list)
    """OrganIds whose user already existed: their password is unchanged (and unknown here)."""
    disabled: list[str] = field(default_factory=list)
    """OrganIds of :attr:`existing` whose user is disabled (:func:`disable`): rotate them to enable them."""


def provision(
    organ_ids: Iterable[str],
    *,
    vhost: str = "vbdt",
    host: str = "127.0.0.1",
    port: int = 5672,
    admin: str = "guest",
    management_url: str | None = None,
    node: str | None = None,
    env: Mapping[str, str] | None = None,
    passwords: Mapping[str, str] | None = None,
    rotate: bool | Collection[str] = False,
    reset: bool = False,
    queue_limits: QueueLimits = DEFAULT_QUEUE_LIMITS,
    ctl: str | None = None,
) -> Provisioned:
    """Create the vhost, topology and agency users (``<vhost>/<OrganId>``); return the new credentials.

    An agency whose user exists keeps its password (it is listed in ``existing``) unless it is
    rotated: ``rotate=True`` gives every listed agency a new password, a collection of OrganIds
    only those (each must be listed; a disabled user rotated is enabled again). ``reset=True``
    deletes the vhost and its agency users first (queued messages too): for demos and tests only.
    The definitions go to the broker :data:`IMPORT_CHUNK` agencies at a time."""
    ids = list(dict.fromkeys(str(o) for o in organ_ids))
    if not ids:
        raise UsageError("no agencies to provision")
    rotating = _rotating(ids, rotate)
    broker = RabbitAdmin(management_url, node, dict(env or {}), ctl)
    if reset:
        deprovision(vhost, admin=broker)
    present = broker.user_tags()
    existing = [o for o in ids if broker_user(vhost, o) in present and o not in rotating]
    new = {o: (passwords or {}).get(o) or secrets.token_urlsafe(18) for o in ids if o not in existing}
    for start in range(0, len(ids), IMPORT_CHUNK):
        chunk = ids[start:start + IMPORT_CHUNK]
        try:  # each document repeats the vhost and exchanges: declaring them again changes nothing
            broker.import_definitions(definitions(chunk, {o: new[o] for o in chunk if o in new}, vhost=vhost,
                                                  admin=admin, queue_limits=queue_limits))
        except TransportError as exc:
            if not start:
                raise
            raise TransportError(f"{exc} — the first {start} of {len(ids)} agencies were provisioned: provision "
                                 "them all again, rotating those whose passwords this call did not return") from None
    urls = {o: f"amqp://{quote(broker_user(vhost, o), safe='')}:{quote(pw, safe='')}@{host}:{port}/{quote(vhost, safe='')}"
            for o, pw in new.items()}
    disabled = [o for o in existing if DISABLED_TAG in present[broker_user(vhost, o)]]
    return Provisioned(vhost, urls, existing, disabled)


def _rotating(ids: list[str], rotate: bool | Collection[str]) -> set[str]:
    if isinstance(rotate, bool):
        return set(ids) if rotate else set()
    asked = {str(o) for o in rotate}
    if unknown := sorted(asked - set(ids)):
        raise UsageError(f"cannot rotate {', '.join(unknown)}: not among the agencies provisioned")
    return asked


def disable(organ_ids: Iterable[str], *, vhost: str, admin: RabbitAdmin | None = None) -> list[str]:
    """Lock agencies out of the broker: their users lose their password and their connections.

    Each user is deleted (RabbitMQ closes its connections) and made again with no password and
    the tag :data:`DISABLED_TAG`, so that provisioning again keeps it locked out; its inbox and the
    messages waiting there stay. ``provision(..., rotate=[organ_id])`` enables it with a new
    password. Returns the OrganIds disabled."""
    ids = list(dict.fromkeys(str(o) for o in organ_ids))
    admin = admin or RabbitAdmin()
    users = [broker_user(vhost, o) for o in ids]
    admin.delete_users(users)
    admin.import_definitions({"users": [{"name": u, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
                                         "tags": DISABLED_TAG} for u in users]})
    return ids


def deprovision(vhost: str, *, admin: RabbitAdmin | None = None) -> list[str]:
    """Delete a vhost and the agency and host users named for it (``<vhost>/…``); return the users deleted.

    Users of other vhosts, and the operator's, are untouched."""
    admin = admin or RabbitAdmin()
    ours = sorted(u for u in admin.users() if organ_id_for_user(u, vhost) is not None or u.startswith(host_user(vhost, "")))
    admin.delete_vhost(vhost)
    admin.delete_users(ours)
    return ours


# -- a host of many agencies (vbdt.exchange.host) ------------------------------------------------------

_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def host_user(vhost: str, name: str) -> str:
    """The broker user of a host of many agencies: ``<vhost>/hosts/<name>``.

    The ``/`` after ``hosts`` keeps it from ever reading as an agency (:func:`organ_id_for_user`
    gives ``None``): what it could publish is refused by every receiver that checks publishers."""
    return f"{vhost}/hosts/{name}"


def host_permissions(organ_ids: Iterable[str]) -> dict[str, str]:
    """A host's patterns: read exactly the hosted inboxes; write and configure nothing.

    Its agencies publish as themselves (their own users), so the broker's ``user_id`` check,
    which receivers bind every package to, is the same as for ``vbdt listen``."""
    names = sorted({inbox_queue(str(o)) for o in organ_ids})
    if not names:
        return {"configure": "^$", "write": "^$", "read": "^$"}
    pattern = exact_alternation(names)
    if len(pattern) > MAX_PATTERN:
        raise UsageError(f"the read pattern of a host of {len(names):,} agencies is {len(pattern):,} characters, over the "
                         f"{MAX_PATTERN:,} a broker compiles safely: {_TOO_LARGE}")
    return {"configure": "^$", "write": "^$", "read": f"^{pattern}$"}


MAX_PATTERN = 30_000
"""The longest permission pattern :func:`host_permissions` gives. RabbitMQ compiles patterns with
PCRE, which refuses one whose compiled form is too large ("regular expression is too large"):
measured on RabbitMQ 3.10, a plain alternation of 1,500 inbox names (45,000 characters) was
refused; the trie of the 10,599 communes of the pre-2025 country (27,000 characters) was taken,
and one of 36,000 characters was refused."""
_TOO_LARGE = "split the agencies across several hosts (each its own user and pattern)"


def exact_alternation(words: Iterable[str]) -> str:
    """A regular expression (PCRE and Python alike) that matches exactly ``words``: their character
    trie, so shared prefixes are written once (``vbdt\\.inbox\\.000\\.01\\.`` once for a district's
    communes, not once per commune): a fifth of the plain alternation's length for real OrganIds."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a word

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) if char else "" for char, child in sorted(node.items())]
        if len(branches) == 1:
            return branches[0]
        if branches[0] == "" and len(branches) == 2:  # "" sorts first: the word may end here
            return f"(?:{branches[1]})?"
        return "(?:" + "|".join(branches) + ")"

    return emit(trie) if trie else "(?!)"


def provision_host(
    name: str,
    organ_ids: Iterable[str],
    *,
    vhost: str = "vbdt",
    host: str = "127.0.0.1",
    port: int = 5672,
    management_url: str | None = None,
    node: str | None = None,
    env: Mapping[str, str] | None = None,
    password: str | None = None,
    rotate: bool = False,
    ctl: str | None = None,
) -> str | None:
    """Create (or update) the broker user of a host (:func:`host_user`) allowed to read the inboxes of
    ``organ_ids``, which must already be provisioned; return its AMQP URL, or ``None`` when the user
    existed and keeps its password (``rotate=True`` gives it a new one).

    Additive: agency users, their permissions and other hosts are untouched; giving the list again
    replaces this host's read pattern (agencies added or removed)."""
    if not _HOST_NAME.fullmatch(name):
        raise UsageError(f"host name {name[:80]!r}: use 1 to 64 letters, digits, '.', '_' or '-', beginning with a letter or digit")
    ids = list(dict.fromkeys(str(o) for o in organ_ids))
    if not ids:
        raise UsageError("a host needs at least one agency")
    broker = RabbitAdmin(management_url, node, dict(env or {}), ctl)
    user = host_user(vhost, name)
    keeps = user in broker.user_tags() and not rotate
    secret = None if keeps else (password or secrets.token_urlsafe(18))
    document: dict[str, Any] = {"permissions": [{"user": user, "vhost": vhost, **host_permissions(ids)}]}
    if secret is not None:
        document["users"] = [{"name": user, "password_hash": hash_password(secret),
                              "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""}]
    try:
        broker.import_definitions(document)
    except TransportError as exc:
        if "regular expression is too large" in str(exc):
            raise UsageError(f"the broker refused the read pattern of a host of {len(ids):,} agencies as too large: "
                             f"{_TOO_LARGE}") from None
        raise
    if secret is None:
        return None
    return f"amqp://{quote(user, safe='')}:{quote(secret, safe='')}@{host}:{port}/{quote(vhost, safe='')}"
