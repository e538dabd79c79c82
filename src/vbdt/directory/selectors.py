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

Several selectors make a union; each agency is named once, in the order first selected
(:meth:`vbdt.directory.Directory.select`). This module only parses: it knows no directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vbdt.edxml.codes import AdminLevel
from vbdt.edxml.organid import OrganId
from vbdt.errors import InvalidOrganId, InvalidSelector

__all__ = ["LEVEL_NAMES", "Selector", "parse_selector"]

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
