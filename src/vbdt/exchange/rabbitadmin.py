"""RabbitMQ's administration, the few operations provisioning needs, through rabbitmqctl or the management API.

Each operation is one call for many agencies: one ``import_definitions`` creates the users, queues
and bindings of up to :data:`vbdt.exchange.broker.IMPORT_CHUNK` agencies; one ``list_users`` reads the users; one call deletes many users
(the management API's ``bulk-delete``, or one ``rabbitmqctl eval``). Starting rabbitmqctl costs an
Erlang VM, about a second; a call per agency would make provisioning a province take minutes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from vbdt.errors import TransportError

__all__ = ["RabbitAdmin"]


@dataclass(frozen=True)
class RabbitAdmin:
    """Where to administer the broker: a management API URL (``http://user:pass@host:15672``), else rabbitmqctl.

    ``node``, ``env`` and ``ctl`` select the rabbitmqctl binary, the node and its environment (a
    test's own broker node, for instance)."""

    management_url: str | None = None
    node: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ctl: str | None = None

    def import_definitions(self, document: Mapping[str, Any]) -> None:
        """Load a definitions document (users, permissions, vhosts, exchanges, queues, bindings)."""
        if self.management_url:
            self._http("POST", "/api/definitions", document)
        else:
            # Through standard input: a file would have to be readable by the broker's own user.
            self._ctl("import_definitions", "--format", "json", stdin=json.dumps(document))

    def users(self) -> set[str]:
        """The names of every user on the broker (users are cluster-wide, not per vhost)."""
        return set(self.user_tags())

    def user_tags(self) -> dict[str, set[str]]:
        """Every user on the broker with its tags (``administrator``, ``vbdt-disabled``…), in one call."""
        if self.management_url:
            listed = self._http("GET", "/api/users", None)
            return {str(u["name"]): _tags(u.get("tags")) for u in listed}
        listed = json.loads(self._ctl("list_users", "--formatter", "json", "--quiet") or "[]")
        return {str(u["user"]): _tags(u.get("tags")) for u in listed}

    def delete_users(self, names: Iterable[str]) -> None:
        """Delete these users (absent ones are fine), in one call."""
        users = sorted(set(names))
        if not users:
            return
        if self.management_url:
            self._http("POST", "/api/users/bulk-delete", {"users": users})
            return
        # Names as byte lists: nothing in a name can change the meaning of the expression.
        binaries = ",".join(f"list_to_binary({list(u.encode('utf-8'))})" for u in users)
        self._ctl("eval", f"[catch rabbit_auth_backend_internal:delete_user(U, <<\"vbdt\">>) || U <- [{binaries}]], ok.")

    def delete_vhost(self, vhost: str) -> None:
        """Delete a vhost and everything in it; absent is fine."""
        if self.management_url:
            self._http("DELETE", f"/api/vhosts/{quote(vhost, safe='')}", None, absent_ok=True)
        else:
            self._ctl("delete_vhost", vhost, check=False)

    def _ctl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        ctl = self.ctl or shutil.which("rabbitmqctl") or ("/usr/sbin/rabbitmqctl" if Path("/usr/sbin/rabbitmqctl").exists() else None)
        if ctl is None:
            raise TransportError("neither a management API URL nor rabbitmqctl is available to administer the broker")
        cmd = [ctl, *(["-n", self.node] if self.node else []), *args]
        try:
            result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=300, env={**os.environ, **self.env})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"rabbitmqctl {args[0]}: {exc}") from None
        if check and result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()
            raise TransportError(f"rabbitmqctl {args[0]} failed: {last[-1] if last else result.returncode}")
        return result.stdout

    def _http(self, method: str, path: str, body: object, *, absent_ok: bool = False) -> Any:
        parts = urlsplit(self.management_url or "")
        # urllib does not send the URL's user and password by itself.
        url = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path.rstrip("/") + path, "", ""))
        headers = {"content-type": "application/json"}
        if parts.username is not None:
            token = f"{parts.username}:{parts.password or ''}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(token).decode()
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if absent_ok and exc.code == 404:
                return None
            raise TransportError(f"management API {method} {path}: {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TransportError(f"management API {method} {path}: {exc}") from None
        return json.loads(payload) if payload.strip() else None


def _tags(value: object) -> set[str]:
    """Tags as the management API (a list, or a comma-separated string before 3.9) or rabbitmqctl give them."""
    if isinstance(value, str):
        return {t.strip() for t in value.split(",") if t.strip()}
    if isinstance(value, list):
        return {str(t) for t in value}
    return set()
