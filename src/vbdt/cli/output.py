"""What commands print for scripts (``--json``) and for people: one shape, documented in ``docs/cli.md``.

Every ``--json`` output of the commands in this package's newer modules is one object::

    {"schema": 1, "<items>": [ ... ]}

always with a list, however many items there are (none, one, many), so that a script reads one
shape. Fields are raw: ids and names apart, sizes and counts as integers, times as ISO 8601 in
Vietnam time (``2026-11-23T09:30:00+07:00``), status codes (``"03"``) apart from their labels.
``schema`` changes only when a field changes meaning or goes away; new fields may be added.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from vbdt.edxml.model import VIETNAM_TZ

__all__ = ["SCHEMA", "age", "echo_json", "iso", "parse_since"]

SCHEMA = 1


def iso(value: dt.datetime | None) -> str | None:
    """An aware time as ISO 8601 in Vietnam time, to the second (``None`` stays ``None``)."""
    return None if value is None else value.astimezone(VIETNAM_TZ).replace(microsecond=0).isoformat()


def echo_json(key: str, items: Sequence[Mapping[str, Any]], **extra: Any) -> None:
    """Print ``{"schema": 1, key: [items...], **extra}`` (UTF-8 text, not escaped)."""
    click.echo(json.dumps({"schema": SCHEMA, **extra, key: list(items)}, ensure_ascii=False, indent=2))


def age(since: dt.datetime, now: dt.datetime | None = None) -> str:
    """How long ago, as a person reads it: ``45s``, ``12m``, ``3h``, ``2d 4h``."""
    seconds = max(0, int(((now or dt.datetime.now(VIETNAM_TZ)) - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def parse_since(value: str | None, what: str = "--since") -> dt.datetime | None:
    """``--since``: a date (``2026-11-23``, from its start), an ISO time, or a duration back from now
    (``30m``, ``12h``, ``7d``); Vietnam time unless the value says otherwise. UsageError otherwise."""
    from vbdt.errors import UsageError

    if value is None:
        return None
    text = value.strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(text) >= 2 and text[-1] in units and text[:-1].isdigit():
        if len(text) > 8:
            raise UsageError(f"{what}: {value[:40]!r} is too far back")
        return dt.datetime.now(VIETNAM_TZ) - dt.timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what}: {value[:40]!r} is not a date (2026-11-23), a time (2026-11-23T08:00) "
                         "or a duration (30m, 12h, 7d)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=VIETNAM_TZ)
