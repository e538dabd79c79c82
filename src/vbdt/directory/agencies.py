"""The agency directory: who exists, at which administrative level, under whom.

The hierarchy is data, not code: each agency names its level (central, province, district,
commune) and its parent, so a province of the pre-2025 shape (province → district → commune) and
one of the two-level shape in force since 1 July 2025 (province → commune) live side by side.

Directories load from JSON (``{"agencies": [...]}``) or CSV (one agency a row, the same columns).
:func:`national_directory` builds the real 2025 map (34 provinces, 3,321 communes) from the
``vietnam-provinces`` package; its OrganIds are synthesised from statistical codes (see there).

Recipient groups are written as selectors, shared by the API and the CLI (:mod:`vbdt.directory.selectors`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from vbdt.directory.selectors import Selector, parse_selector
from vbdt.edxml.codes import AdminLevel
from vbdt.edxml.model import Organization, _Model
from vbdt.edxml.organid import OrganId
from vbdt.errors import DirectoryError, InvalidModel, UnknownAgency

__all__ = ["AgencyRecord", "Directory"]


class AgencyRecord(_Model):
    """One agency of the directory."""

    organ_id: OrganId
    """Its identifier (mã định danh)."""
    name: str
    """Display name, e.g. "UBND xã Hòa Tiến"."""
    level: AdminLevel
    """Administrative level: central, province, district or commune."""
    parent: OrganId | None = None
    """The agency directly above it (None at the top)."""
    short_name: str | None = None
    """Abbreviation used in notations, e.g. "UBND", "VPCP"."""
    address: str | None = None
    email: str | None = None
    telephone: str | None = None
    website: str | None = None
    statistical_code: str | None = None
    """The General Statistics Office code of the administrative unit, when it is one."""
    cert_fingerprints: list[str] = Field(default_factory=list)
    """SHA-256 fingerprints (hex) of the certificates this agency signs with, when pinned."""

    def organization(self) -> Organization:
        """The edXML ``From``/``To`` block for this agency (see also :meth:`Directory.organization`)."""
        return Organization(
            organ_id=self.organ_id,
            organ_name=self.name,
            organ_add=self.address,
            email=self.email,
            telephone=self.telephone,
            website=self.website,
        )


class Directory:
    """An immutable set of agencies with their hierarchy, indexed for the queries routing needs."""

    def __init__(self, agencies: Iterable[AgencyRecord], *, name: str = "directory") -> None:
        self.name = name
        self._by_id: dict[str, AgencyRecord] = {}
        self._children: dict[str, list[AgencyRecord]] = {}
        for agency in agencies:
            if agency.organ_id in self._by_id:
                raise DirectoryError(f"{name}: agency {str(agency.organ_id)!r} appears twice")
            self._by_id[agency.organ_id] = agency
        for agency in self._by_id.values():
            if agency.parent is None:
                continue
            parent = self._by_id.get(agency.parent)
            if parent is None:
                raise DirectoryError(
                    f"{name}: {str(agency.organ_id)!r} names parent {str(agency.parent)!r}, which is not in the directory"
                )
            # A unit sits at its parent's level or below (a ministry's department is still central).
            if parent.level.rank > agency.level.rank:
                raise DirectoryError(
                    f"{name}: {str(agency.organ_id)!r} ({agency.level}) cannot sit under "
                    f"{str(parent.organ_id)!r} ({parent.level})"
                )
            self._children.setdefault(agency.parent, []).append(agency)
        for agency in self._by_id.values():
            seen = {agency.organ_id}
            node = agency
            while node.parent is not None:
                if node.parent in seen:
                    raise DirectoryError(f"{name}: the parents of {str(agency.organ_id)!r} form a cycle")
                seen.add(node.parent)
                node = self._by_id[node.parent]

    # -- loading

    @classmethod
    def load(cls, path: str | Path) -> Directory:
        """Load a JSON or CSV directory file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DirectoryError(f"{path}: no such directory file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DirectoryError(f"{path}: cannot read: {exc}") from None
        if path.suffix.lower() == ".csv":
            rows: list[dict[str, Any]] = [
                {k: (v or None) for k, v in row.items() if k} for row in csv.DictReader(text.splitlines())
            ]
            for row in rows:
                if row.get("cert_fingerprints"):
                    row["cert_fingerprints"] = str(row["cert_fingerprints"]).split()
                else:
                    row.pop("cert_fingerprints", None)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DirectoryError(f"{path}: not JSON: {exc}") from None
            if not isinstance(data, dict) or not isinstance(data.get("agencies"), list):
                raise DirectoryError(f'{path}: expected an object with an "agencies" list')
            rows = data["agencies"]
        return cls.from_rows(rows, name=path.name)

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]], *, name: str = "directory") -> Directory:
        """Build from dictionaries with the fields of :class:`AgencyRecord`."""
        agencies = []
        for i, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise DirectoryError(f"{name}: agency #{i} is not an object")
            try:
                agencies.append(AgencyRecord(**row))
            except (InvalidModel, TypeError) as exc:
                raise DirectoryError(f"{name}: agency #{i}: {exc}") from None
        return cls(agencies, name=name)

    def to_json(self) -> str:
        """The directory as JSON, loadable by :meth:`load`."""
        agencies = [a.model_dump(mode="json", exclude_defaults=True) for a in self]
        return json.dumps({"name": self.name, "agencies": agencies}, ensure_ascii=False, indent=1)

    # -- queries

    def __contains__(self, organ_id: object) -> bool:
        return organ_id in self._by_id

    def __iter__(self) -> Iterator[AgencyRecord]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, organ_id: str) -> AgencyRecord:
        """The agency, or :class:`~vbdt.errors.UnknownAgency`."""
        try:
            return self._by_id[organ_id]
        except KeyError:
            raise UnknownAgency(organ_id) from None

    def parent(self, organ_id: str) -> AgencyRecord | None:
        """The agency directly above, or None at the top."""
        agency = self.get(organ_id)
        return None if agency.parent is None else self._by_id[agency.parent]

    def children(self, organ_id: str) -> list[AgencyRecord]:
        """The agencies directly below."""
        self.get(organ_id)
        return list(self._children.get(organ_id, ()))

    def descendants(self, organ_id: str, level: AdminLevel | None = None) -> list[AgencyRecord]:
        """Every agency below, depth first; only those of ``level`` when given."""
        self.get(organ_id)
        out: list[AgencyRecord] = []
        stack = list(reversed(self._children.get(organ_id, ())))
        while stack:
            agency = stack.pop()
            if level is None or agency.level is level:
                out.append(agency)
            stack.extend(reversed(self._children.get(agency.organ_id, ())))
        return out

    def ancestors(self, organ_id: str) -> list[AgencyRecord]:
        """Every agency above, nearest first."""
        out = []
        node = self.parent(organ_id)
        while node is not None:
            out.append(node)
            node = self.parent(node.organ_id)
        return out

    def of_level(self, level: AdminLevel, under: str | None = None) -> list[AgencyRecord]:
        """All agencies of a level, in the whole directory or under one agency."""
        if under is not None:
            return self.descendants(under, level)
        return [a for a in self if a.level is level]

    def select(self, *selectors: str) -> list[AgencyRecord]:
        """The agencies named by selectors (see :mod:`vbdt.directory.selectors`), each once, in order.

        Unknown agencies raise UnknownAgency; a malformed selector raises InvalidSelector.
        """
        out: dict[str, AgencyRecord] = {}
        for text in selectors:
            for agency in self._selected(parse_selector(text)):
                out.setdefault(agency.organ_id, agency)
        return list(out.values())

    def _selected(self, selector: Selector) -> list[AgencyRecord]:
        if selector.base is None:
            return [a for a in self if selector.level is None or a.level is selector.level]
        if selector.scope == "self":
            return [self.get(selector.base)]
        if selector.scope == "children":
            return [a for a in self.children(selector.base) if selector.level is None or a.level is selector.level]
        return self.descendants(selector.base, selector.level)

    def organization(self, organ_id: str) -> Organization:
        """The edXML ``From``/``To`` block of an agency, with its superior as OrganizationInCharge."""
        agency = self.get(organ_id)
        parent = self.parent(organ_id)
        org = agency.organization()
        org.organization_in_charge = parent.name if parent else None
        return org
