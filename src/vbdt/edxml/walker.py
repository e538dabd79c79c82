"""Reading values off a repaired edXML tree: navigation, conversion and the findings they raise.

A :class:`Walker` is what the part builders of :mod:`vbdt.edxml.building` share. It reads every
value with :func:`~vbdt.edxml.text.element_text` (the text the signature covers), knows the source
line of each element path it visits (worked out when asked), and turns what cannot be converted into
a finding instead of an exception. A required part that is unusable raises :class:`Unusable` after its finding is recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lxml import etree

from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.organid import OrganId
from vbdt.edxml.text import element_text
from vbdt.edxml.xmlparse import EDXML_NS
from vbdt.errors import InvalidModel, InvalidOrganId

__all__ = ["Seen", "Unusable", "Walker", "child", "header_of", "q"]

T = TypeVar("T")
Found = tuple[etree._Element, str]
_Kids = dict[Any, list[etree._Element]]  # by tag (a comment's tag is a function)
# (path, element): an element found at path; (path, name, element): the leaf path/name read;
# (path, children, names): the leaves read by texts()
_Visit = (
    tuple[str, etree._Element] | tuple[str, str, etree._Element] | tuple[str, _Kids, tuple[str, ...]]
)


@functools.cache
def q(name: str) -> str:
    """Clark name in the edXML namespace."""
    return f"{{{EDXML_NS}}}{name}"


@functools.cache
def _qualified(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(q(name) for name in names)


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


@dataclass
class Seen:
    """What a pass over a tree read, handed to the :class:`Walker` of the same, unchanged tree."""

    kids: dict[etree._Element, _Kids]
    """The children of each element that has any, by tag, each list in document order."""
    texts: dict[etree._Element, str]
    """The text of leaves (:func:`~vbdt.edxml.text.element_text`)."""


class Unusable(Exception):
    """A required part cannot be represented; the finding is already recorded."""


class Walker:
    """Walks one tree; collects findings and, on demand, the line of every path it read."""

    def __init__(self, known: list[Finding]) -> None:
        self.findings: list[Finding] = []
        self._reported = {f.path for f in known}
        # children of each element visited, by tag: one pass over an element instead of a
        # find() per field (the header has a hundred leaves)
        self._kids: dict[etree._Element, _Kids] = {}
        # What was read, in order. Lines are asked for only when a rule reports something, so the
        # paths of leaves and the lines are made then (see lines), not for every value read.
        self._visits: list[_Visit] = []
        self._lines: dict[str, int] = {}
        self._replayed = 0
        # the texts of leaves already read by whoever handed the children over (adopt)
        self._texts: dict[etree._Element, str] = {}

    @property
    def lines(self) -> dict[str, int]:
        """Source line of each element path read so far (when the element has one)."""
        lines = self._lines
        visits = self._visits
        for visit in visits[self._replayed :]:
            if len(visit) == 2:
                path, element = visit
                line = element.sourceline
                if line:
                    lines[path] = line
            elif isinstance(visit[1], str):
                path, name, element = visit
                line = element.sourceline
                if line:
                    lines[f"{path}/{name}"] = line
            else:
                path, kids, names = visit
                for name in names:
                    found = kids.get(q(name))
                    if found:
                        line = found[0].sourceline
                        if line:
                            lines[f"{path}/{name}"] = line
        self._replayed = len(visits)
        return lines

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

    def adopt(self, seen: Seen) -> None:
        """Take what a pass over this very tree, unchanged since, read (an element whose children
        are missing from it is read when visited)."""
        self._kids = seen.kids
        self._texts = seen.texts

    def _text(self, element: etree._Element) -> str:
        text = self._texts.get(element)
        return element_text(element) if text is None else text

    def _leaf(self, parent: etree._Element, name: str, path: str) -> etree._Element | None:
        """:meth:`one` for a child only read: its path is made if a line or a finding needs it."""
        kids = self._kids.get(parent)
        if kids is None:
            kids = self._children(parent)
        found = kids.get(q(name))
        if not found:
            return None
        element = found[0]
        self._visits.append((path, name, element))
        return element

    def _children(self, parent: etree._Element) -> _Kids:
        found = self._kids.get(parent)
        if found is None:
            found = self._kids[parent] = {}
            for child in parent:
                tag = child.tag
                same = found.get(tag)
                if same is None:
                    found[tag] = [child]
                else:
                    same.append(child)
        return found

    def at(self, element: etree._Element, path: str) -> str:
        """Record that ``path`` was read at ``element``; return the path."""
        self._visits.append((path, element))
        return path

    def one(self, parent: etree._Element, name: str, path: str) -> Found | None:
        """The first child ``name`` and its path, or None."""
        kids = self._kids.get(parent)
        if kids is None:
            kids = self._children(parent)
        found = kids.get(q(name))
        if not found:
            return None
        visit = (found[0], f"{path}/{name}")
        self._visits.append((visit[1], visit[0]))
        return visit

    def need(self, parent: etree._Element, name: str, path: str) -> Found:
        """The first child ``name``; a missing one makes the part unusable."""
        found = self.one(parent, name, path)
        if found is None:
            raise self.fail("EDX001", f"{name} is missing", f"{path}/{name}", parent.sourceline)
        return found

    def many(self, parent: etree._Element, name: str, path: str) -> list[Found]:
        """Every child ``name`` with its (indexed) path."""
        found = self._children(parent).get(q(name))
        if not found:
            return []
        if len(found) == 1:
            out = [(found[0], f"{path}/{name}")]
        else:
            out = [(element, f"{path}/{name}[{i}]") for i, element in enumerate(found, 1)]
        self._visits.extend((where, element) for element, where in out)
        return out

    def within(self, found: Found, name: str) -> list[Found]:
        """Every child ``name`` of an element already found (with its path)."""
        return self.many(found[0], name, found[1])

    def first_within(self, found: Found, name: str) -> Found | None:
        """The first child ``name`` of an element already found."""
        return self.one(found[0], name, found[1])

    # -- values

    def text(self, parent: etree._Element, name: str, path: str) -> str | None:
        """The text of an optional child, or None when it is absent."""
        element = self._leaf(parent, name, path)
        return None if element is None else self._text(element)

    def texts(self, parent: etree._Element, path: str, names: tuple[str, ...]) -> list[str | None]:
        """:meth:`text` of each of ``names`` in turn, in one call (the many leaves of a part)."""
        kids = self._kids.get(parent)
        if kids is None:
            kids = self._children(parent)
        self._visits.append((path, kids, names))
        cached = self._texts.get
        out: list[str | None] = []
        for tag in _qualified(names):
            found = kids.get(tag)
            if found:
                text = cached(found[0])
                out.append(element_text(found[0]) if text is None else text)
            else:
                out.append(None)
        return out

    def need_text(self, parent: etree._Element, name: str, path: str) -> str:
        """The non-empty text of a required child."""
        element = self._leaf(parent, name, path)
        if element is None:
            raise self.fail("EDX001", f"{name} is missing", f"{path}/{name}", parent.sourceline)
        value = self._text(element)
        if not value:
            raise self.fail("EDX001", f"{name} is empty", f"{path}/{name}", element.sourceline)
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
        element = self._leaf(parent, name, path)
        raw = self._text(element).strip() if element is not None else ""
        if element is None or not raw:
            if required:
                raise self.fail("EDX001", f"{name} is missing or empty", f"{path}/{name}", parent.sourceline)
            return None
        try:
            return parse(raw)
        except (ValueError, InvalidModel) as exc:
            where = f"{path}/{name}"
            detail = f" ({exc})" if str(exc) and str(exc) != raw else ""
            self.report(code, f"{name} {raw!r} is not {what}{detail}", where, element.sourceline)
            if required:
                raise Unusable(where) from None
            return None

    def organ_id(self, element: etree._Element, path: str) -> OrganId:
        """The OrganId in ``element``, leniently: a non-standard form is left to rule EDX101."""
        try:
            # the tree's layout whitespace is not part of the value; the schema judges it
            return OrganId.lenient(self._text(element).strip())
        except InvalidOrganId as exc:
            raise self.fail("EDX101", exc.reason, path, element.sourceline) from None
