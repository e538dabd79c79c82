"""Recipient selectors: one small syntax for the API and the CLI.

::

    000.00.00.H54              that agency
    000.00.00.H54/*            the agencies directly under it
    000.00.00.H54/**           every agency under it, at any depth
    000.00.00.H54/**:commune   every commune under it (any level name: central, province,
                               district, commune, or trung-uong, tinh, huyen, xa)
    000.00.00.H54/*:district   its districts
    **:province                every province in the directory
    **                         every agency in the directory

Several selectors make a union; each agency is named once, in the order first selected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vbdt.codes import AdminLevel
from vbdt.errors import InvalidOrganId, InvalidSelector
from vbdt.organid import OrganId

if TYPE_CHECKING:  # pragma: no cover
    from vbdt.directory import Agency, Directory

__all__ = ["LEVEL_NAMES", "Selector", "parse_selector", "resolve"]

LEVEL_NAMES: dict[str, AdminLevel] = {
    **{level.value: level for level in AdminLevel},
    "trung-uong": AdminLevel.CENTRAL,
    "tinh": AdminLevel.PROVINCE,
    "huyen": AdminLevel.DISTRICT,
    "xa": AdminLevel.COMMUNE,
}
"""Level names a selector accepts (English and unaccented Vietnamese)."""

_SELECTOR = re.compile(r"^(?P<base>\*\*|[^/:*]+)(?:/(?P<scope>\*\*|\*))?(?::(?P<level>[a-z-]+))?$")


@dataclass(frozen=True)
class Selector:
    """A parsed selector."""

    base: OrganId | None
    """The agency named, or None for the whole directory (``**``)."""
    scope: str
    """``self``, ``children`` or ``descendants``."""
    level: AdminLevel | None
    """Only agencies of this level, when given."""


def parse_selector(text: str) -> Selector:
    """Parse one selector; :class:`~vbdt.errors.InvalidSelector` says what is wrong."""
    match = _SELECTOR.match(text.strip())
    if match is None:
        raise InvalidSelector(
            f"invalid selector {text!r}: expected ORGANID, ORGANID/*, ORGANID/**, "
            "an optional :LEVEL, or **:LEVEL"
        )
    level = None
    if match["level"]:
        level = LEVEL_NAMES.get(match["level"])
        if level is None:
            raise InvalidSelector(
                f"invalid selector {text!r}: unknown level {match['level']!r} "
                f"(one of {', '.join(LEVEL_NAMES)})"
            )
    if match["base"] == "**":
        if match["scope"]:
            raise InvalidSelector(f"invalid selector {text!r}: ** already means every agency")
        return Selector(None, "descendants", level)
    try:
        base = OrganId(match["base"])
    except InvalidOrganId as exc:
        raise InvalidSelector(f"invalid selector {text!r}: {exc.reason}") from None
    scope = {None: "self", "*": "children", "**": "descendants"}[match["scope"]]
    if scope == "self" and level is not None:
        raise InvalidSelector(f"invalid selector {text!r}: a level needs /* or /** (e.g. {base}/**:{match['level']})")
    return Selector(base, scope, level)


def resolve(directory: Directory, selectors: Iterable[str]) -> list[Agency]:
    """The agencies selected, each once, in order. Unknown agencies raise UnknownAgency."""
    out: dict[str, Agency] = {}
    for text in selectors:
        selector = parse_selector(text)
        if selector.base is None:
            found = [a for a in directory if selector.level is None or a.level is selector.level]
        elif selector.scope == "self":
            found = [directory.get(selector.base)]
        elif selector.scope == "children":
            found = [
                a for a in directory.children(selector.base) if selector.level is None or a.level is selector.level
            ]
        else:
            found = directory.descendants(selector.base, selector.level)
        for agency in found:
            out.setdefault(agency.organ_id, agency)
    return list(out.values())
