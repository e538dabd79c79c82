"""Reading and validating edXML: the one pipeline behind :func:`read` and :func:`validate`.

bytes → hardened parse → repair quirks → XSD → model → business rules → report.

The tree is parsed once and validated in place; the schema is compiled once per process. Strict
and lenient reading differ in one thing only: the known deviations of real systems (the byte-level
ones of :func:`vbdt.edxml.reader.parse_tree`, the tree-level ones of
:func:`vbdt.edxml.reader.repair_quirks`, and the value-level ones the rules mark as variants) are
errors when strict, warnings when lenient. Everything else keeps its severity, and a lenient read
still hands back the model with its findings.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO

from lxml import etree

from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.model import Document, Package
from vbdt.edxml.quirks import repair_tree
from vbdt.edxml.reader import build_package, parse_tree
from vbdt.edxml.rules import RuleContext, check_rules
from vbdt.edxml.schemas import SchemaKind, schema_findings
from vbdt.edxml.walker import Seen
from vbdt.edxml.writer import to_tree
from vbdt.edxml.xmlparse import DEFAULT_LIMITS, Limits, load_bytes
from vbdt.errors import ValidationError

__all__ = ["Source", "ValidationReport", "check", "check_tree", "read", "read_lenient", "report_tree", "validate"]

Source = bytes | bytearray | memoryview | str | Path | IO[bytes]
"""Where a document comes from: its bytes, a path, or a binary file object."""


@dataclass
class ValidationReport:
    """What validation found: the package (when one could be built) and every finding."""

    package: Package | None
    """The model, or None when the document is too broken to build one."""
    findings: list[Finding] = field(default_factory=list)
    """Every finding, in document order where lines are known."""
    source: str | None = None
    """A name for the source (a file name) used in messages."""

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity error."""
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        """Findings of severity warning."""
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def valid(self) -> bool:
        """True when a package was built and no finding is an error."""
        return self.package is not None and not self.errors

    def raise_for_errors(self) -> None:
        """Raise :class:`~vbdt.errors.ValidationError` unless valid."""
        if not self.valid:
            raise ValidationError(self.findings, source=self.source)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "source": self.source,
            "valid": self.valid,
            "kind": _kind(self.package),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }


def _kind(package: Package | None) -> str | None:
    if package is None:
        return None
    return "document" if isinstance(package, Document) else "status"


def _name(source: Source) -> str | None:
    if isinstance(source, str | Path):
        return str(source)
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, str) else None


def validate(
    source: Source,
    *,
    lenient: bool = False,
    directory: Container[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    today: date | None = None,
) -> ValidationReport:
    """Read and check a document; return every finding rather than raising on the first.

    Raises :class:`~vbdt.errors.XmlError` only when the bytes cannot be taken as edXML at all
    (:class:`~vbdt.errors.TooManyAttachments` past ``limits.max_attachments``).
    """
    data = load_bytes(source, limits)
    tree, findings = parse_tree(data, limits, lenient=lenient)
    del data  # the tree holds the content now; do not keep a second copy of a large package
    checked, seen = _check(tree, lenient)
    findings += checked
    return _report(tree, findings, lenient=lenient, directory=directory, limits=limits, today=today,
                   source=_name(source), seen=seen)


def check_tree(tree: etree._ElementTree, *, lenient: bool = False) -> list[Finding]:
    """The first half of :func:`validate` on a tree from :func:`vbdt.edxml.reader.parse_tree`: the
    known deviations repaired in place (errors when strict, warnings when lenient), then the schema.

    No model is built, so the tree keeps every text: a strict check that finds nothing has changed
    nothing (each repair is reported), and the signature can be checked on this very tree before
    :func:`report_tree` builds the model from it.
    """
    return _check(tree, lenient)[0]


def _check(tree: etree._ElementTree, lenient: bool) -> tuple[list[Finding], Seen]:
    """:func:`check_tree`, and what its pass over the tree read that no repair changed (the reader
    then walks the tree without reading it again)."""
    findings, is_status, seen = repair_tree(tree, lenient=lenient)  # is_status: is_status_message(tree)
    return findings + schema_findings(tree, SchemaKind.STATUS if is_status else SchemaKind.DOCUMENT), seen


def report_tree(
    tree: etree._ElementTree,
    findings: list[Finding],
    *,
    lenient: bool = False,
    directory: Container[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    today: date | None = None,
    source: str | None = None,
) -> ValidationReport:
    """The second half of :func:`validate`: the model built from a checked tree (:func:`check_tree`,
    whose ``findings`` are given so none is reported twice), then the business rules.

    The tree is consumed: building moves each attachment's base64 text out of it.
    Raises :class:`~vbdt.errors.TooManyAttachments` past ``limits.max_attachments``.
    """
    return _report(tree, findings, lenient=lenient, directory=directory, limits=limits, today=today, source=source)


def _report(
    tree: etree._ElementTree,
    findings: list[Finding],
    *,
    lenient: bool,
    directory: Container[str] | None,
    limits: Limits,
    today: date | None,
    source: str | None,
    seen: Seen | None = None,
) -> ValidationReport:
    findings = list(findings)
    built = build_package(tree, findings, limits=limits, seen=seen)
    findings += built.findings
    if built.package is not None:
        ctx = RuleContext(directory=directory, source_manifest=built.manifest, lenient=lenient)
        if today is not None:
            ctx.today = today
        for finding in check_rules(built.package, ctx):
            findings.append(
                Finding(finding.code, finding.severity, finding.message, finding.path, built.line_of(finding.path))
            )
    findings.sort(key=lambda f: (f.line or 0))
    return ValidationReport(built.package, findings, source)


def read(
    source: Source,
    *,
    directory: Container[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Package:
    """Read a document strictly: the package, or :class:`~vbdt.errors.ValidationError`.

    Warnings do not stop a strict read; use :func:`validate` to see them.
    """
    report = validate(source, lenient=False, directory=directory, limits=limits)
    report.raise_for_errors()
    assert report.package is not None
    return report.package


def read_lenient(
    source: Source,
    *,
    directory: Container[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ValidationReport:
    """Read a real-world document: the package plus every finding.

    Raises :class:`~vbdt.errors.ValidationError` only when no package can be built at all.
    """
    report = validate(source, lenient=True, directory=directory, limits=limits)
    if report.package is None:
        raise ValidationError(report.findings, source=report.source)
    return report


def check(package: Package, *, directory: Container[str] | None = None, today: date | None = None) -> list[Finding]:
    """Validate a package built in Python: the schema on its written form, then the rules."""
    tree = to_tree(package).getroottree()
    kind = SchemaKind.DOCUMENT if isinstance(package, Document) else SchemaKind.STATUS
    findings = schema_findings(tree, kind)
    ctx = RuleContext(directory=directory)
    if today is not None:
        ctx.today = today
    return findings + check_rules(package, ctx)
