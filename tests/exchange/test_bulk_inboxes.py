"""Finding the recipients without an inbox before a bulk run publishes (``Transport.missing_inboxes``):
on RabbitMQ, passive declares pipelined in windows, a missing queue closing its channel; the same
answer as the embedded broker's for inboxes present, missing, in runs and across window edges."""

from __future__ import annotations

import uuid

from conftest import admin_url, require_broker
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.broker import definitions
from vbdt.exchange.memory import MemoryBroker
from vbdt.exchange.rabbitadmin import RabbitAdmin

IDS = [f"000.{i // 100:02d}.{i % 100:02d}.H14" for i in range(1, 701)]
# every seventh missing, a run of 40 across the first window's edge (256), the last one
MISSING = {o for i, o in enumerate(IDS) if i % 7 == 3} | set(IDS[240:280]) | {IDS[-1]}
PRESENT = [o for o in IDS if o not in MISSING]


async def test_missing_inboxes_on_rabbitmq_and_the_embedded_broker() -> None:
    require_broker()
    broker = MemoryBroker()
    broker.provision(PRESENT)
    memory = broker.connect("guest")
    assert await memory.missing_inboxes(IDS) == MISSING
    # Inboxes only (classic queues: 500 quorum queues would load the shared broker), no users.
    vhost = f"vbdt-test-{uuid.uuid4().hex[:8]}"
    document = definitions(PRESENT, {}, vhost=vhost)
    for queue in document["queues"]:
        queue["arguments"] = {"x-queue-type": "classic"}
    document["permissions"] = [p for p in document["permissions"] if p["user"] == "guest"]
    admin = RabbitAdmin()
    admin.import_definitions(document)
    try:
        transport = await AmqpTransport.connect(admin_url(vhost), declare=False)
        try:
            assert await transport.missing_inboxes(IDS) == MISSING
            assert await transport.missing_inboxes([*PRESENT, *PRESENT[:5]]) == set()  # repeats are looked up once
            assert await transport.missing_inboxes(sorted(MISSING)) == MISSING  # nothing but missing ones
            assert await transport.missing_inboxes([]) == set()
            # the connection is still good after hundreds of channels closed by the broker
            assert await transport.missing_inboxes(IDS[:3]) == MISSING & set(IDS[:3])
        finally:
            await transport.close()
    finally:
        admin.delete_vhost(vhost)
