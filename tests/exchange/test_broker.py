"""Broker provisioning: the definitions document, and who may do what on a real RabbitMQ."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import subprocess
from urllib.parse import unquote

import aio_pika
import aiormq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from conftest import admin_url, fresh_vhost
from vbdt.errors import MessageTooLarge, PublishRefused, TransportError, UsageError
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.broker import (
    MAX_PATTERN,
    agency_permissions,
    definitions,
    exact_alternation,
    hash_password,
    host_permissions,
    host_user,
    provision_host,
)
from vbdt.exchange.routing import routing_key
from vbdt.exchange.transport import Outgoing, QueueLimits


def test_password_hash_is_rabbitmq_sha256() -> None:
    encoded = hash_password("secret", salt=b"\x01\x02\x03\x04")
    raw = base64.b64decode(encoded)
    assert raw[:4] == b"\x01\x02\x03\x04" and raw[4:] == hashlib.sha256(b"\x01\x02\x03\x04secret").digest()


def test_permissions_allow_only_own_inbox_and_the_exchange() -> None:
    perms = agency_permissions("000.00.00.H14")
    assert re.match(perms["read"], "vbdt.inbox.000.00.00.H14")
    assert not re.match(perms["read"], "vbdt.inbox.000.00.00.H54")
    assert not re.match(perms["read"], "vbdt.inbox.000X00X00XH14")  # dots escaped
    assert re.match(perms["write"], "vbdt.exchange")
    assert not re.match(perms["write"], "vbdt.dlx")  # only the broker dead-letters
    assert not re.match(perms["write"], "vbdt.inbox.000.00.00.H14")
    assert perms["configure"] == "^$"


def test_definitions_cover_every_agency_and_bound_every_queue() -> None:
    ids = ["000.00.00.H14", "000.00.01.H14"]
    doc = definitions(ids, {ids[1]: "pw"}, vhost="v", queue_limits=QueueLimits(inbox_messages=7, dead_bytes=9))
    assert [u["name"] for u in doc["users"]] == ["v/000.00.01.H14"]  # only the user given a password
    assert {p["user"] for p in doc["permissions"]} == {"guest", "v/000.00.00.H14", "v/000.00.01.H14"}
    assert {q["name"] for q in doc["queues"]} == {"vbdt.dead", "vbdt.inbox.000.00.00.H14", "vbdt.inbox.000.00.01.H14"}
    for q in doc["queues"]:
        assert q["arguments"]["x-queue-type"] == "quorum" and q["arguments"]["x-overflow"] == "reject-publish"
    inbox = next(q for q in doc["queues"] if q["name"] == "vbdt.inbox.000.00.00.H14")["arguments"]
    assert inbox["x-max-length"] == 7 and inbox["x-dead-letter-strategy"] == "at-least-once"
    assert next(q for q in doc["queues"] if q["name"] == "vbdt.dead")["arguments"]["x-max-length-bytes"] == 9
    assert {(b["destination"], b["routing_key"]) for b in doc["bindings"]} >= {("vbdt.inbox.000.00.01.H14", "H14.01")}


# -- on the real RabbitMQ ---------------------------------------------------------------------------

A, B = "000.00.00.H14", "000.00.01.H14"


def test_users_are_named_per_vhost_and_existing_passwords_are_kept() -> None:
    """Provisioning another vhost, or the same one again, never re-keys a running agency's user."""
    from vbdt.exchange.broker import deprovision, provision

    with fresh_vhost([A]) as first:
        user = unquote(URL(first.urls[A]).raw_user or "")
        assert user == f"{first.vhost}/{A}"
        other = f"{first.vhost}-b"  # a second deployment on the same broker, same agency
        try:
            second = provision([A], vhost=other)
            assert set(second.urls) == {A} and second.urls[A] != first.urls[A]
            again = provision([A, B], vhost=first.vhost)
            assert again.existing == [A] and set(again.urls) == {B}  # A keeps its password, B is new
            asyncio.run(_works(first.urls[A]))  # the running agency is not locked out
            asyncio.run(_works(second.urls[A]))
            rotated = provision([A], vhost=first.vhost, rotate=True)
            asyncio.run(_works(rotated.urls[A]))
            with pytest.raises(TransportError, match="access refused"):
                asyncio.run(_works(first.urls[A]))  # asked to rotate: the old password is gone
        finally:
            assert deprovision(other) == [f"{other}/{A}"]  # only that vhost's users


def test_a_large_provisioning_is_imported_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of quorum inboxes in one definitions import outlast rabbitmqctl; each chunk is its
    own import, and together they make the same vhost, users, inboxes and bindings as one would."""
    from vbdt.exchange import broker as provisioning
    from vbdt.exchange.rabbitadmin import RabbitAdmin

    imports: list[int] = []
    real = RabbitAdmin.import_definitions

    def counted(self: RabbitAdmin, document: dict[str, object]) -> None:
        imports.append(len(document["queues"]) - 1)  # type: ignore[arg-type]  # the dead-letter queue is in each
        real(self, document)

    monkeypatch.setattr(provisioning, "IMPORT_CHUNK", 2)
    monkeypatch.setattr(RabbitAdmin, "import_definitions", counted)
    agencies = [f"000.00.{n:02d}.H14" for n in range(1, 6)]
    with fresh_vhost(agencies) as done:
        assert imports == [2, 2, 1] and set(done.urls) == set(agencies)
        listed = json.loads(subprocess.run(["rabbitmqctl", "list_bindings", "-p", done.vhost, "--formatter", "json", "-q"],
                                           capture_output=True, text=True, check=True, timeout=120).stdout)
        bound = {b["routing_key"] for b in listed if b["source_name"] == "vbdt.exchange"}
        assert {routing_key(o) for o in agencies} <= bound
        for organ_id in agencies:  # every user was made, with the password returned
            asyncio.run(_works(done.urls[organ_id]))
        again = provisioning.provision(agencies, vhost=done.vhost)
        assert sorted(again.existing) == sorted(agencies) and again.urls == {}


async def _works(url: str) -> None:
    transport = await AmqpTransport.connect(url, declare=False)
    await transport.close()


async def _raw(url: str, action: str) -> None:
    """What an attacker holding an agency's credentials does with a plain AMQP client."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        if action == "publish to vbdt.dlx":
            dlx = await channel.get_exchange("vbdt.dlx", ensure=False)
            await dlx.publish(aio_pika.Message(b"<forged/>", headers={"x-vbdt-reason": "forged"}), "")
            await channel.get_queue("vbdt.dead", ensure=False)  # a round trip: the refusal closes the channel first
        elif action == "declare a queue":
            await channel.declare_queue("vbdt.inbox.mine", durable=True)
        elif action == "read another inbox":
            queue = await channel.get_queue(f"vbdt.inbox.{B}", ensure=False)
            await queue.get(fail=False)
        elif action == "read the dead letters":
            queue = await channel.get_queue("vbdt.dead", ensure=False)
            await queue.get(fail=False)
        elif action == "bind a tap":
            queue = await channel.get_queue(f"vbdt.inbox.{A}", ensure=False)
            await queue.bind("vbdt.exchange", routing_key="#")
    finally:
        await connection.close()


@pytest.mark.parametrize("action", ["publish to vbdt.dlx", "declare a queue", "read another inbox", "read the dead letters",
                                    "bind a tap"])
async def test_an_agency_may_only_publish_to_the_exchange_and_read_its_inbox(action: str) -> None:
    with fresh_vhost([A, B]) as done:
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await _raw(done.urls[A], action)
        # the transport maps it too, and the agency keeps working afterwards
        a = await AmqpTransport.connect(done.urls[A], declare=False)
        b = await AmqpTransport.connect(done.urls[B], declare=False)
        admin = await AmqpTransport.connect(admin_url(done.vhost), declare=False)
        try:
            with pytest.raises(TransportError, match="access refused"):
                await AmqpTransport.connect(done.urls[A], declare=True)  # declaring the topology
            await a.publish(Outgoing(routing_key(B), b"<good/>", "after-attack"))
            it = b.consume(B).__aiter__()
            delivered = await asyncio.wait_for(it.__anext__(), 10)
            assert (delivered.message_id, delivered.user_id) == ("after-attack", A)
            await delivered.ack()
            assert await admin.dead_letters() == []  # nothing forged reached the dead letters
        finally:
            for t in (a, b, admin):
                await t.close()


async def test_a_refused_publish_is_publish_refused_and_the_channel_is_reopened() -> None:
    with fresh_vhost([A, B]) as done:
        a = await AmqpTransport.connect(done.urls[A], declare=False)
        try:
            _ctl("set_permissions", "-p", done.vhost, f"{done.vhost}/{A}", "^$", "^$", f"^vbdt\\.inbox\\.{re.escape(A)}$")
            (outcome,) = await a.publish_many([Outgoing(routing_key(B), b"<x/>", "no-write")])
            assert isinstance(outcome.error, PublishRefused) and "access refused" in str(outcome.error)
            _ctl("set_permissions", "-p", done.vhost, f"{done.vhost}/{A}", *agency_permissions(A).values())
            await a.publish(Outgoing(routing_key(B), b"<x/>", "write-again"))  # same transport, a new channel
        finally:
            await a.close()


async def test_over_the_brokers_maximum_size_is_message_too_large_and_the_rest_goes_on() -> None:
    """RabbitMQ closes the channel for a message over ``max_message_size``: never retried, never a loop."""
    broker_max = 128 * 1024 * 1024  # RabbitMQ's default, as configured on the test broker
    with fresh_vhost([A, B]) as done:
        a = await AmqpTransport.connect(done.urls[A], declare=False, max_message_bytes=2 * broker_max)
        b = await AmqpTransport.connect(done.urls[B], declare=False)
        try:
            consumer = b.consume(B).__aiter__()
            (outcome,) = await a.publish_many([Outgoing(routing_key(B), bytes(broker_max + 1), "huge")])
            assert isinstance(outcome.error, MessageTooLarge), outcome.error
            # the transport learned the broker's bound: a second try is refused before sending
            with pytest.raises(MessageTooLarge, match="maximum message size"):
                await a.publish(Outgoing(routing_key(B), bytes(broker_max + 1), "huge-again"))
            await a.publish(Outgoing(routing_key(B), b"<small/>", "small"))
            delivered = await asyncio.wait_for(consumer.__anext__(), 10)
            assert delivered.message_id == "small"
            await delivered.ack()
        finally:
            await a.close()
            await b.close()


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True)


# -- a host's read pattern: exactly its inboxes, compact enough for the broker's PCRE ----------------

_WORD = st.text(alphabet=st.sampled_from(list("0.1H9.\\|()[]*+?^$x")), min_size=0, max_size=8)


@settings(max_examples=300, deadline=None)
@given(words=st.sets(_WORD, min_size=1, max_size=30), probes=st.lists(_WORD, max_size=30))
def test_exact_alternation_matches_exactly_its_words(words: set[str], probes: list[str]) -> None:
    pattern = re.compile(f"^{exact_alternation(words)}$")
    assert all(pattern.match(w) for w in words)
    # near misses: every prefix and every extension of a word, and random strings
    for candidate in [*probes, *(w[:i] for w in words for i in range(len(w))), *(w + "x" for w in words)]:
        assert bool(pattern.match(candidate)) == (candidate in words), candidate


def _country_communes() -> list[str]:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from bench_bulk import plan

    _, _, communes = plan(10_000)  # the generated pre-2025 shape: 10,000 communes
    return communes


def test_a_host_of_a_whole_country_gets_a_pattern_a_broker_compiles() -> None:
    communes = _country_communes()
    read = host_permissions(communes)["read"]
    plain = sum(len(re.escape(f"vbdt.inbox.{c}")) + 1 for c in communes)
    assert len(read) <= MAX_PATTERN < plain  # a tenth of the plain alternation, which PCRE refuses
    pattern = re.compile(read)
    assert all(pattern.match(f"vbdt.inbox.{c}") for c in communes[::97])
    assert not pattern.match("vbdt.inbox.000.00.00.H14") and not pattern.match(f"vbdt.inbox.{communes[0]}x")
    with pytest.raises(UsageError, match="split the agencies across several hosts"):
        host_permissions([f"{c}.{i}" for i, c in enumerate(communes)])


def test_rabbitmq_takes_the_pattern_of_a_host_of_10000_agencies() -> None:
    """The broker compiles what host_permissions gives for 10,000 communes (a plain alternation of
    1,500 names is refused with "regular expression is too large")."""
    communes = _country_communes()
    with fresh_vhost([communes[0]]) as done:
        url = provision_host("country", communes, vhost=done.vhost)
        assert url is not None
        listed = subprocess.run(["rabbitmqctl", "list_user_permissions", host_user(done.vhost, "country"), "--formatter",
                                 "json"], capture_output=True, text=True, timeout=120, check=True).stdout
        (permissions,) = json.loads(listed)
        assert permissions["read"] == host_permissions(communes)["read"] and permissions["write"] == "^$"
