"""Names on the broker: exchanges, inbox queues and routing keys, derived from OrganIds.

A routing key shows the hierarchy: the OrganId's groups from level 1 down, with the all-zero
groups of the levels below it left out. So ``000.00.00.H54`` (a province) routes as ``H54``, its
district ``000.00.01.H54`` as ``H54.01`` and a commune of that district ``000.02.01.H54`` as
``H54.01.02``; ``H54.#`` matches the whole province in a topic binding, which is what an
operator's monitoring queue or an audit tap binds to. Each inbox is bound by its exact key.
"""

from __future__ import annotations

from vbdt.organid import OrganId

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "EXCHANGE",
    "HEADER_FROM",
    "HEADER_KIND",
    "HEADER_REASON",
    "inbox_queue",
    "organ_id_for_key",
    "routing_key",
]

EXCHANGE = "vbdt.exchange"
"""Durable topic exchange every package is published to."""
DEAD_LETTER_EXCHANGE = "vbdt.dlx"
"""Durable fanout exchange for messages that could not be processed (and ones over the redelivery limit)."""
DEAD_LETTER_QUEUE = "vbdt.dead"
"""Durable quorum queue that keeps every dead-lettered message with its reason."""
HEADER_KIND = "x-vbdt-kind"
"""``document`` or ``status``."""
HEADER_REASON = "x-vbdt-reason"
"""Why a message was dead-lettered."""
HEADER_FROM = "x-vbdt-from"
"""The sending agency as the sender's software states it (checked against the broker's user_id)."""


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
