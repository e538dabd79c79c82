"""Provisioning RabbitMQ for an agency directory: a vhost, the topology, one user per agency.

Each agency gets its own broker user named by its OrganId, allowed to

- publish only to the vbdt exchanges (``write`` on ``vbdt.exchange`` and ``vbdt.dlx``),
- read only its own inbox (``read`` on ``vbdt.inbox.<OrganId>``),
- configure nothing (the topology is the operator's),

and RabbitMQ checks the ``user_id`` of every message against the authenticated user, so a
package's publisher is known for certain. Everything is expressed as one definitions document
(:func:`definitions`, pure) and loaded in one step — ``rabbitmqctl import_definitions`` on the
broker's host, or ``POST /api/definitions`` on the management API — rather than hundreds of
``rabbitmqctl add_user`` calls, each of which starts an Erlang VM.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vbdt.errors import TransportError, UsageError
from vbdt.routing import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EXCHANGE, inbox_queue, routing_key
from vbdt.transport import DELIVERY_LIMIT

__all__ = ["agency_permissions", "apply_definitions", "definitions", "delete_vhost", "hash_password", "provision"]


def hash_password(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def agency_permissions(organ_id: str) -> dict[str, str]:
    """The configure/write/read patterns of an agency's user."""
    return {
        "configure": "^$",
        "write": f"^({re.escape(EXCHANGE)}|{re.escape(DEAD_LETTER_EXCHANGE)})$",
        "read": f"^{re.escape(inbox_queue(organ_id))}$",
    }


def definitions(organ_ids: Iterable[str], passwords: Mapping[str, str], *, vhost: str, admin: str = "guest") -> dict[str, Any]:
    """The whole provisioning as a RabbitMQ definitions document."""
    ids = list(dict.fromkeys(str(o) for o in organ_ids))
    inbox_args = {"x-queue-type": "quorum", "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-delivery-limit": DELIVERY_LIMIT}
    return {
        "vhosts": [{"name": vhost}],
        "users": [{"name": o, "password_hash": hash_password(passwords[o]), "hashing_algorithm": "rabbit_password_hashing_sha256",
                   "tags": ""} for o in ids],
        "permissions": [{"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]
        + [{"user": o, "vhost": vhost, **agency_permissions(o)} for o in ids],
        "exchanges": [
            {"name": EXCHANGE, "vhost": vhost, "type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}},
            {"name": DEAD_LETTER_EXCHANGE, "vhost": vhost, "type": "fanout", "durable": True, "auto_delete": False, "internal": False,
             "arguments": {}},
        ],
        "queues": [{"name": DEAD_LETTER_QUEUE, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum"}}]
        + [{"name": inbox_queue(o), "vhost": vhost, "durable": True, "auto_delete": False, "arguments": inbox_args} for o in ids],
        "bindings": [{"source": DEAD_LETTER_EXCHANGE, "vhost": vhost, "destination": DEAD_LETTER_QUEUE, "destination_type": "queue",
                      "routing_key": "", "arguments": {}}]
        + [{"source": EXCHANGE, "vhost": vhost, "destination": inbox_queue(o), "destination_type": "queue",
            "routing_key": routing_key(o), "arguments": {}} for o in ids],
    }


def apply_definitions(document: Mapping[str, Any], *, management_url: str | None = None, node: str | None = None,
                      env: Mapping[str, str] | None = None, ctl: str | None = None) -> str:
    """Load a definitions document: through the management API when a URL is given, else rabbitmqctl."""
    if management_url:
        request = urllib.request.Request(
            management_url.rstrip("/") + "/api/definitions", data=json.dumps(document).encode(), method="POST",
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return f"management API answered {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            raise TransportError(f"cannot load definitions through {management_url}: {exc}") from None
    ctl = ctl or _rabbitmqctl()
    # Through standard input: the file would have to be readable by the broker's own user.
    cmd = [ctl, *(["-n", node] if node else []), "import_definitions", "--format", "json"]
    try:
        result = subprocess.run(cmd, input=json.dumps(document), capture_output=True, text=True, timeout=300,
                                env={**os.environ, **(env or {})})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TransportError(f"rabbitmqctl import_definitions: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()
        raise TransportError(f"rabbitmqctl import_definitions failed: {last[-1] if last else result.returncode}")
    return "rabbitmqctl import_definitions: ok"


def delete_vhost(vhost: str, *, management_url: str | None = None, node: str | None = None,
                 env: Mapping[str, str] | None = None, ctl: str | None = None) -> None:
    """Remove a vhost and everything in it (a fresh start for demos and tests); absent is fine."""
    if management_url:
        request = urllib.request.Request(f"{management_url.rstrip('/')}/api/vhosts/{quote(vhost, safe='')}", method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=60).close()
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise TransportError(f"cannot delete vhost {vhost}: {exc}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TransportError(f"cannot delete vhost {vhost}: {exc}") from None
        return
    ctl = ctl or _rabbitmqctl()
    subprocess.run([ctl, *(["-n", node] if node else []), "delete_vhost", vhost], capture_output=True, timeout=120,
                   env={**os.environ, **(env or {})}, check=False)


def _rabbitmqctl() -> str:
    ctl = shutil.which("rabbitmqctl") or ("/usr/sbin/rabbitmqctl" if Path("/usr/sbin/rabbitmqctl").exists() else None)
    if ctl is None:
        raise TransportError("neither a management API URL nor rabbitmqctl is available to provision the broker")
    return ctl


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
    reset: bool = False,
    ctl: str | None = None,
) -> dict[str, str]:
    """Create the vhost, topology and users; return each agency's AMQP URL (keep it secret).

    ``reset=True`` deletes the vhost first (its queued messages too): for demos and tests only.
    """
    ids = list(dict.fromkeys(str(o) for o in organ_ids))
    if not ids:
        raise UsageError("no agencies to provision")
    if reset:
        delete_vhost(vhost, management_url=management_url, node=node, env=env, ctl=ctl)
    secrets_by_id = {o: (passwords or {}).get(o) or secrets.token_urlsafe(18) for o in ids}
    apply_definitions(definitions(ids, secrets_by_id, vhost=vhost, admin=admin), management_url=management_url, node=node,
                      env=env, ctl=ctl)
    return {o: f"amqp://{quote(o, safe='')}:{quote(secrets_by_id[o], safe='')}@{host}:{port}/{quote(vhost, safe='')}" for o in ids}
