"""Agency identifiers (mã định danh, QCVN 102:2016 and Decision 20/2020/QĐ-TTg).

An identifier has four dot-separated groups written lowest level first::

    V1V2V3 . Z1Z2 . Y1Y2 . MX1X2
    level 4  level 3  level 2  level 1

``000.00.00.H54`` is a level-1 unit (a provincial People's Committee), ``000.00.18.G12`` a level-2
unit under ``000.00.00.G12``. A group of zeros means "no unit at this level"; a unit at level *n* has
every group from level 1 up to *n* set and every group above it zero.

The groups may hold the digits and capital letters that Decision 20/2020 allows, so that a province
with more than 99 communes can still number them at one level.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from vbdt.errors import InvalidOrganId

__all__ = ["OrganId", "nonstandard_kind"]

_MAX_LENGTH = 35  # Decision 20/2020/QĐ-TTg
_SYNTAX = re.compile(r"[0-9A-Z]+(?:\.[0-9A-Z]+)*")
# The standard four-group form. Group widths are fixed; the level-1 group is a letter and two
# characters (G22, H54; real systems also use other letters such as A80).
_GROUP_SHAPES = (
    (re.compile(r"[0-9A-Z]{3}"), "three characters", "000"),
    (re.compile(r"[0-9A-Z]{2}"), "two characters", "00"),
    (re.compile(r"[0-9A-Z]{2}"), "two characters", "00"),
    (re.compile(r"[A-Z][0-9A-Z]{2}"), "a capital letter and two characters", None),
)
_GROUP_NAMES = ("level-4 group", "level-3 group", "level-2 group", "level-1 group")
# Identifiers really seen on the national axis that are not QCVN 102 identifiers: the reader keeps
# them (lenient) and names their kind; strict reading refuses them (rule EDX107).
_KINDS = (
    (re.compile(r"[0-9]{10}(?:[0-9]{2,3})?"), "an enterprise tax code, not an agency identifier"),
    (re.compile(r"[a-z][a-z0-9]*(?:\.[a-z0-9]+)+"), "a hub identifier in lower case, not an agency identifier"),
    (re.compile(r"[A-Z][0-9A-Z]{2}"), "a bare level-1 code; the identifier is 000.00.00.{value}"),
    (re.compile(r"[0-9]{2}\.[0-9]{2}\.W[0-9]{2}"), "a hop of the national axis, not an agency"),
)


def nonstandard_kind(value: str) -> str | None:
    """What a known non-standard identifier is (tax code, hub, bare level-1 code, axis hop), or None."""
    for shape, kind in _KINDS:
        if shape.fullmatch(value):
            return kind.format(value=value)
    return None


class OrganId(str):
    """An agency identifier: a ``str`` that knows its level and its parent.

    ``OrganId("000.00.18.G12")`` parses strictly and raises :class:`~vbdt.errors.InvalidOrganId`
    with the reason when the value is not in the standard four-group form.
    ``OrganId.lenient(value)`` accepts any identifier allowed by Decision 20/2020 (dot-separated
    groups of 0-9 and A-Z, at most 35 characters) and marks it ``is_standard = False``; such an
    identifier has no level or parent. The lenient reader uses it for real-world packages.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> OrganId:
        if not isinstance(value, str):
            raise InvalidOrganId(repr(value), "an OrganId is a string")
        _parse_standard(value)
        return super().__new__(cls, value)

    @classmethod
    def lenient(cls, value: str) -> OrganId:
        """Accept any Decision 20/2020 identifier or a known non-standard kind (:func:`nonstandard_kind`);
        ``is_standard`` tells whether it is four-group."""
        try:
            return cls(value)
        except InvalidOrganId:
            pass
        if not value or len(value) > _MAX_LENGTH or not (_SYNTAX.fullmatch(value) or nonstandard_kind(value)):
            raise InvalidOrganId(
                value,
                f"an identifier is at most {_MAX_LENGTH} characters of 0-9 and A-Z "
                "in dot-separated groups",
            )
        return str.__new__(cls, value)

    @property
    def is_standard(self) -> bool:
        """True for the four-group form of QCVN 102:2016."""
        try:
            _parse_standard(str(self))
        except InvalidOrganId:
            return False
        return True

    @property
    def groups(self) -> tuple[str, ...]:
        """The dot-separated groups, lowest level first, as written."""
        return tuple(self.split("."))

    @property
    def level(self) -> int:
        """Coding level 1-4: 1 for a ministry or province, 2 for a unit under it, and so on."""
        return self._facts()[0]

    @property
    def parent(self) -> OrganId | None:
        """The identifier of the unit one level up, or None for a level-1 unit."""
        parent = self._facts()[1]
        return None if parent is None else OrganId(parent)

    @property
    def root(self) -> OrganId:
        """The level-1 unit (ministry, province) this identifier belongs to."""
        return OrganId(f"000.00.00.{self.groups[3]}") if self.level > 1 else self

    def ancestors(self) -> list[OrganId]:
        """Every unit above this one, nearest first."""
        out: list[OrganId] = []
        node = self.parent
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def is_under(self, other: str) -> bool:
        """True when ``other`` is an ancestor of this identifier."""
        return other in self.ancestors()

    def _facts(self) -> tuple[int, str | None]:
        try:
            return _parse_standard(str(self))
        except InvalidOrganId as exc:
            raise InvalidOrganId(str(self), f"it has no level: {exc.reason}") from None

    def __repr__(self) -> str:
        return f"OrganId({str(self)!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Strings are parsed strictly; an OrganId instance (possibly lenient) is kept as it is.
        def validate(value: Any) -> OrganId:
            if isinstance(value, OrganId):
                return value
            if isinstance(value, str):
                return cls(value)
            raise InvalidOrganId(repr(value), "an OrganId is a string")

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.to_string_ser_schema()
        )


# The same identifiers recur in every document of an exchange; a bounded cache keeps parsing free.
@functools.lru_cache(maxsize=65536)
def _parse_standard(value: str) -> tuple[int, str | None]:
    if value != value.strip():
        raise InvalidOrganId(value, "an identifier has no spaces or line breaks around it")
    groups = value.split(".")
    if len(groups) != 4:
        raise InvalidOrganId(
            value,
            f"expected four dot-separated groups like 000.00.00.H54, found {len(groups)}",
        )
    for group, (shape, words, _zero), name in zip(groups, _GROUP_SHAPES, _GROUP_NAMES, strict=True):
        if not shape.fullmatch(group):
            raise InvalidOrganId(value, f"the {name} {group!r} must be {words} (0-9, A-Z)")
    set_flags = [group != zero for group, (_, _, zero) in zip(groups, _GROUP_SHAPES, strict=True)]
    # set_flags[0..2] = levels 4,3,2 present; level 1 is always set.
    level = 1
    for index in (2, 1, 0):
        if set_flags[index]:
            level = 4 - index
    # Every group between level 1 and the unit's own level must be set.
    for index in range(4 - level, 3):
        if not set_flags[index]:
            raise InvalidOrganId(
                value,
                f"the {_GROUP_NAMES[index]} is zero under a unit at level {level}; "
                "a unit's parent groups must all be set",
            )
    if level == 1:
        return 1, None
    parent_groups = list(groups)
    zero = _GROUP_SHAPES[4 - level][2]
    assert zero is not None
    parent_groups[4 - level] = zero
    return level, ".".join(parent_groups)
