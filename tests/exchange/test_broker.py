"""Broker provisioning: the definitions document, and who may do what on a real RabbitMQ."""

from __future__ import annotations

import base64
import hashlib
import re

from vbdt.broker import agency_permissions, definitions, hash_password


def test_password_hash_is_rabbitmq_sha256() -> None:
    encoded = hash_password("secret", salt=b"\x01\x02\x03\x04")
    raw = base64.b64decode(encoded)
    assert raw[:4] == b"\x01\x02\x03\x04" and raw[4:] == hashlib.sha256(b"\x01\x02\x03\x04secret").digest()


def test_permissions_allow_only_own_inbox_and_the_exchanges() -> None:
    perms = agency_permissions("000.00.00.H14")
    assert re.match(perms["read"], "vbdt.inbox.000.00.00.H14")
    assert not re.match(perms["read"], "vbdt.inbox.000.00.00.H54")
    assert not re.match(perms["read"], "vbdt.inbox.000X00X00XH14")  # dots escaped
    assert re.match(perms["write"], "vbdt.exchange") and re.match(perms["write"], "vbdt.dlx")
    assert not re.match(perms["write"], "vbdt.inbox.000.00.00.H14")
    assert perms["configure"] == "^$"


def test_definitions_cover_every_agency() -> None:
    ids = ["000.00.00.H14", "000.00.01.H14"]
    doc = definitions(ids, {i: "pw" for i in ids}, vhost="v")
    assert {u["name"] for u in doc["users"]} == set(ids)
    assert {q["name"] for q in doc["queues"]} == {"vbdt.dead", "vbdt.inbox.000.00.00.H14", "vbdt.inbox.000.00.01.H14"}
    assert all(q["arguments"]["x-queue-type"] == "quorum" for q in doc["queues"])
    assert {(b["destination"], b["routing_key"]) for b in doc["bindings"]} >= {("vbdt.inbox.000.00.01.H14", "H14.01")}
