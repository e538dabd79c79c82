"""The topology on the broker: exchanges, inbox queues, routing keys and users named from OrganIds.

A routing key shows the hierarchy: the OrganId's groups from level 1 down, with the all-zero
groups of the levels below it left out. So ``000.00.00.H54`` (a province) routes as ``H54``, its
district ``000.00.01.H54`` as ``H54.01`` and a commune of that district ``000.02.01.H54`` as
``H54.01.02``; ``H54.#`` matches the whole province in a topic binding, which is what an
operator's monitoring queue or an audit tap binds to. Each inbox is bound by its exact key.

Broker users are cluster-wide while inboxes live in a vhost, so an agency's user is named
``<vhost>/<OrganId>`` (:func:`broker_user`): two deployments on one broker never share a user, and
the broker-checked ``user_id`` of a message maps back to the OrganId (:func:`organ_id_for_user`).
"""

from __future__ import annotations

from typing import Any

from vbdt.edxml.organid import OrganId
from vbdt.exchange.transport import DELIVERY_LIMIT, SHORTSTR_MAX, Delivery, Outgoing, QueueLimits

__all__ = [
    "BROKER_DEATH",
    "BROKER_HEADERS",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_KEY",
    "DEAD_LETTER_QUEUE",
    "EXCHANGE",
    "HEADER_FROM",
    "HEADER_KIND",
    "HEADER_QUEUE",
    "HEADER_REASON",
    "HEADER_REPORTED_BY",
    "broker_user",
    "dead_letter_report",
    "dead_queue_arguments",
    "inbox_arguments",
    "inbox_queue",
    "organ_id_for_key",
    "organ_id_for_queue",
    "organ_id_for_user",
    "routing_key",
]

EXCHANGE = "vbdt.exchange"
"""Durable topic exchange every package is published to."""
DEAD_LETTER_EXCHANGE = "vbdt.dlx"
"""Durable fanout exchange for messages that could not be processed (and ones over the redelivery limit)."""
DEAD_LETTER_QUEUE = "vbdt.dead"
"""Durable quorum queue that keeps every dead-lettered message with its reason."""
DEAD_LETTER_KEY = "vbdt.dead"
"""Routing key on :data:`EXCHANGE` bound to the dead-letter queue: an agency reports a message it
refuses here (it may not write to :data:`DEAD_LETTER_EXCHANGE`, which only the broker feeds).
No OrganId's routing key can take this form (those begin with a level-1 code or ``x``)."""
HEADER_KIND = "x-vbdt-kind"
"""``document`` or ``status``."""
HEADER_REASON = "x-vbdt-reason"
"""Why a message was dead-lettered."""
HEADER_FROM = "x-vbdt-from"
"""The sending agency as the sender's software states it (checked against the broker's user_id)."""
HEADER_QUEUE = "x-vbdt-queue"
"""The inbox a dead letter was taken from (set from the broker's own record, never from the message)."""
HEADER_REPORTED_BY = "x-vbdt-reported-by"
"""The agency, as the broker authenticated it, that dead-lettered a message with a reason."""
BROKER_HEADERS = (HEADER_REASON, HEADER_QUEUE, HEADER_REPORTED_BY)
"""Headers of a dead letter that the broker side sets; a publisher's own values are dropped."""
BROKER_DEATH = ("x-death", "x-first-death-", "x-last-death-")
"""Prefixes of RabbitMQ's own dead-lettering record; a publisher's headers of these names are dropped."""


def routing_key(organ_id: str) -> str:
    """The hierarchical routing key of an agency's inbox."""
    groups = str(organ_id).split(".")
    if not OrganId.lenient(str(organ_id)).is_standard:
        return "x." + ".".join(reversed(groups))  # a non-standard id keeps every group, marked
    top_down = list(reversed(groups))  # level 1 first
    while len(top_down) > 1 and set(top_down[-1]) == {"0"}:
        top_down.pop()
    return ".".join(top_down)


def organ_id_for_key(key: str) -> str:
    """The OrganId an inbox routing key stands for (inverse of :func:`routing_key`)."""
    parts = key.split(".")
    if parts[0] == "x":
        return ".".join(reversed(parts[1:]))
    zeros = ["00", "00", "000"]  # the groups of levels 2, 3 and 4 when absent
    top_down = [parts[0], *parts[1:], *zeros[len(parts) - 1:]]
    return ".".join(reversed(top_down))


def inbox_queue(organ_id: str) -> str:
    """The durable quorum queue holding an agency's inbox."""
    return f"vbdt.inbox.{organ_id}"


def organ_id_for_queue(name: str) -> str | None:
    """The OrganId whose inbox ``name`` is (inverse of :func:`inbox_queue`); ``None`` for another queue."""
    prefix = "vbdt.inbox."
    return name[len(prefix):] or None if name.startswith(prefix) else None


def broker_user(vhost: str, organ_id: str) -> str:
    """The broker user of an agency on a vhost: ``<vhost>/<OrganId>``, unique across deployments."""
    return f"{vhost}/{organ_id}"


def organ_id_for_user(user: str | None, vhost: str) -> str | None:
    """The OrganId a broker user stands for on ``vhost``; ``None`` when the name is not an agency's there."""
    prefix = f"{vhost}/"
    if user is None or not user.startswith(prefix):
        return None
    organ_id = user[len(prefix):]
    return organ_id if organ_id and "/" not in organ_id else None


def inbox_arguments(limits: QueueLimits, delivery_limit: int = DELIVERY_LIMIT) -> dict[str, Any]:
    """Queue arguments of an agency inbox: quorum, bounded, refusing when full, dead-lettering safely.

    ``at-least-once`` keeps a dead-lettered message in the inbox until ``vbdt.dead`` has taken it,
    so a full dead-letter queue delays dead letters instead of dropping them (RabbitMQ ≥ 3.10;
    it requires ``reject-publish``). A single active consumer: a second process reading the inbox
    waits instead of silently taking half the mail."""
    return {
        "x-queue-type": "quorum", "x-delivery-limit": delivery_limit, "x-single-active-consumer": True,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-strategy": "at-least-once",
        "x-max-length": limits.inbox_messages, "x-max-length-bytes": limits.inbox_bytes, "x-overflow": "reject-publish",
    }


def dead_queue_arguments(limits: QueueLimits) -> dict[str, Any]:
    """Queue arguments of ``vbdt.dead``: quorum, bounded, refusing when full.

    A dead letter the operator rejects goes back through :data:`EXCHANGE` under its own routing
    key, to the inbox it came from, with its publisher (``user_id``) intact: that is how a replay
    keeps who sent it. ``at-least-once`` keeps it in ``vbdt.dead`` until the inbox has taken it."""
    return {"x-queue-type": "quorum", "x-max-length": limits.dead_messages, "x-max-length-bytes": limits.dead_bytes,
            "x-overflow": "reject-publish", "x-dead-letter-exchange": EXCHANGE, "x-dead-letter-strategy": "at-least-once"}


def dead_letter_report(delivery: Delivery, reason: str) -> Outgoing:
    """The copy of a refused delivery that an agency publishes to :data:`DEAD_LETTER_KEY` with its reason.

    The reason is cut to fit an AMQP header and the publisher's headers that would not fit are left
    out, so that a hostile message can always be dead-lettered; the broker side attributes the
    report to its publisher."""
    def fits(text: str) -> bool:
        return len(text.encode("utf-8", "surrogatepass")) <= SHORTSTR_MAX

    text = reason.encode("utf-8")[:SHORTSTR_MAX].decode("utf-8", "ignore")
    headers = {k: v for k, v in delivery.headers.items()
               if k not in BROKER_HEADERS and not k.startswith(BROKER_DEATH) and fits(k) and fits(v)}
    return Outgoing(DEAD_LETTER_KEY, delivery.body, delivery.message_id, {**headers, HEADER_REASON: text})
