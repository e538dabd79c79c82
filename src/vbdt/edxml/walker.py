"""Reading values off a repaired edXML tree: navigation, conversion and the findings they raise.

A :class:`Walker` is what the part builders of :mod:`vbdt.edxml.building` share. It reads every
value with :func:`~vbdt.edxml.text.element_text` (the text the signature covers), records the source
line of each element path it visits, and turns what cannot be converted into a finding instead of
an exception. A required part that is unusable raises :class:`Unusable` after its finding is recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

from lxml import etree

from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.organid import OrganId
from vbdt.edxml.text import element_text
from vbdt.edxml.xmlparse import EDXML_NS
from vbdt.errors import InvalidModel, InvalidOrganId

__all__ = ["Unusable", "Walker", "child", "header_of", "q"]

T = TypeVar("T")
Found = tuple[etree._Element, str]


@functools.cache
def q(name: str) -> str:
    """Clark name in the edXML namespace."""
    return f"{{{EDXML_NS}}}{name}"


def child(parent: etree._Element, name: str) -> etree._Element | None:
    """The first child ``name`` in the edXML namespace: ``parent.find(q(name))``, filtered in C
    without ElementPath (a third of its cost)."""
    return next(parent.iterchildren(q(name)), None)


def header_of(root: etree._Element) -> etree._Element | None:
    """``root.find("edXMLEnvelope/edXMLHeader")`` (edXML names): the first header of any envelope."""
    for envelope in root.iterchildren(q("edXMLEnvelope")):
        header = child(envelope, "edXMLHeader")
        if header is not None:
            return header
    return None


class Unusable(Exception):
    """A required part cannot be represented; the finding is already recorded."""


class Walker:
    """Walks one tree; collects findings and the line of every path it reads."""

    def __init__(self, known: list[Finding]) -> None:
        self.findings: list[Finding] = []
        self.lines: dict[str, int] = {}
        self._reported = {f.path for f in known}
        # children of each element visited, by tag: one pass over an element instead of a
        # find() per field (the header has a hundred leaves)
        self._kids: dict[etree._Element, dict[str, list[etree._Element]]] = {}

    # -- reporting

    def report(self, code: str, message: str, path: str, line: int | None) -> None:
        """Record an error unless the schema already said what is wrong at ``path``."""
        if path in self._reported:
            return
        self._reported.add(path)
        self.findings.append(Finding(code, Severity.ERROR, message, path, line))

    def fail(self, code: str, message: str, path: str, line: int | None) -> Unusable:
        """Record an error and return the exception that abandons the part."""
        self.report(code, message, path, line)
        return Unusable(path)

    # -- navigation

    def _children(self, parent: etree._Element) -> dict[str, list[etree._Element]]:
        found = self._kids.get(parent)
        if found is None:
            found = self._kids[parent] = {}
            for child in parent:
                tag = child.tag
                if tag in found:
                    found[tag].append(child)
                else:
                    found[tag] = [child]
        return found

    def at(self, element: etree._Element, path: str) -> str:
        """Record the line of ``path``; return the path."""
        if element.sourceline:
            self.lines[path] = element.sourceline
        return path

    def one(self, parent: etree._Element, name: str, path: str) -> Found | None:
        """The first child ``name`` and its path, or None."""
        kids = self._kids.get(parent)
        if kids is None:
            kids = self._children(parent)
        found = kids.get(q(name))
        if not found:
            return None
        element = found[0]
        where = f"{path}/{name}"
        line = element.sourceline
        if line:
            self.lines[where] = line
        return element, where

    def need(self, parent: etree._Element, name: str, path: str) -> Found:
        """The first child ``name``; a missing one makes the part unusable."""
        found = self.one(parent, name, path)
        if found is None:
            raise self.fail("EDX001", f"{name} is missing", f"{path}/{name}", parent.sourceline)
        return found

    def many(self, parent: etree._Element, name: str, path: str) -> list[Found]:
        """Every child ``name`` with its (indexed) path."""
        found = self._children(parent).get(q(name), [])
        return [
            (element, self.at(element, f"{path}/{name}[{i + 1}]" if len(found) > 1 else f"{path}/{name}"))
            for i, element in enumerate(found)
        ]

    def within(self, found: Found, name: str) -> list[Found]:
        """Every child ``name`` of an element already found (with its path)."""
        return self.many(found[0], name, found[1])

    def first_within(self, found: Found, name: str) -> Found | None:
        """The first child ``name`` of an element already found."""
        return self.one(found[0], name, found[1])

    # -- values

    def text(self, parent: etree._Element, name: str, path: str) -> str | None:
        """The text of an optional child, or None when it is absent."""
        found = self.one(parent, name, path)
        return None if found is None else element_text(found[0])

    def texts(self, parent: etree._Element, path: str, names: Sequence[str]) -> list[str | None]:
        """:meth:`text` of each of ``names`` in turn, in one call (the many leaves of a part)."""
        kids = self._children(parent)
        lines = self.lines
        out: list[str | None] = []
        for name in names:
            found = kids.get(q(name))
            if not found:
                out.append(None)
                continue
            element = found[0]
            line = element.sourceline
            if line:
                lines[f"{path}/{name}"] = line
            out.append(element_text(element))
        return out

    def need_text(self, parent: etree._Element, name: str, path: str) -> str:
        """The non-empty text of a required child."""
        element, where = self.need(parent, name, path)
        value = element_text(element)
        if not value:
            raise self.fail("EDX001", f"{name} is empty", where, element.sourceline)
        return value

    def convert(
        self,
        parent: etree._Element,
        name: str,
        path: str,
        parse: Callable[[str], T],
        what: str,
        *,
        required: bool = False,
        code: str = "EDX001",
    ) -> T | None:
        """The child's text converted by ``parse``; a finding (and None) when it is not ``what``."""
        found = self.one(parent, name, path)
        raw = element_text(found[0]).strip() if found is not None else ""
        if found is None or not raw:
            if required:
                raise self.fail("EDX001", f"{name} is missing or empty", f"{path}/{name}", parent.sourceline)
            return None
        element, where = found
        try:
            return parse(raw)
        except (ValueError, InvalidModel) as exc:
            detail = f" ({exc})" if str(exc) and str(exc) != raw else ""
            self.report(code, f"{name} {raw!r} is not {what}{detail}", where, element.sourceline)
            if required:
                raise Unusable(where) from None
            return None

    def organ_id(self, element: etree._Element, path: str) -> OrganId:
        """The OrganId in ``element``, leniently: a non-standard form is left to rule EDX101."""
        try:
            # the tree's layout whitespace is not part of the value; the schema judges it
            return OrganId.lenient(element_text(element).strip())
        except InvalidOrganId as exc:
            raise self.fail("EDX101", exc.reason, path, element.sourceline) from None
