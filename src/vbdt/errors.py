"""The one error hierarchy of vbdt.

Every failure that vbdt reports to its caller is an instance of :class:`VbdtError`; nothing else
escapes a public entry point on bad input. The tree::

    VbdtError
    ├── UsageError                  a caller passed an argument that makes no sense
    ├── InvalidOrganId              an agency identifier (mã định danh) is malformed   (also ValueError)
    ├── InvalidModel                a model was built with invalid values              (also ValueError)
    ├── XmlError                    bytes that cannot be taken as an edXML document at all
    │   ├── MalformedXml            not well-formed XML (line and column given)
    │   ├── UnsafeXml               DTD, entity declarations, processing tricks: refused, never expanded
    │   ├── DocumentTooLarge        over the configured size limit
    │   ├── DocumentTooDeep         over the configured nesting limit
    │   └── NotEdxml                well-formed, but not an edXML package or status message
    ├── ValidationError             the document was read but breaks the schema or business rules;
    │                               ``.findings`` lists every problem with code, line, path and reason
    ├── AttachmentError             an attachment cannot be decoded or read
    └── DirectoryError              the agency directory
        ├── UnknownAgency           an OrganId that the directory does not know
        └── InvalidSelector         a recipient selector that cannot be parsed

The trust and exchange layers add their own branches under :class:`VbdtError` in this module, so
that the whole tree stays drawn in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vbdt.findings import Finding

__all__ = [
    "AttachmentError",
    "DirectoryError",
    "DocumentTooDeep",
    "DocumentTooLarge",
    "InvalidModel",
    "InvalidOrganId",
    "InvalidSelector",
    "MalformedXml",
    "NotEdxml",
    "UnknownAgency",
    "UnsafeXml",
    "UsageError",
    "ValidationError",
    "VbdtError",
    "XmlError",
]


class VbdtError(Exception):
    """Root of every error raised by vbdt."""


class UsageError(VbdtError):
    """A caller passed an argument that makes no sense (a wrong type, an impossible option)."""


class InvalidOrganId(VbdtError, ValueError):
    """An agency identifier is malformed; the message says which group is wrong and why."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid OrganId {value!r}: {reason}")
        self.value = value
        self.reason = reason


class InvalidModel(VbdtError, ValueError):
    """A model (document, status message, agency...) was built with invalid values."""


class XmlError(VbdtError):
    """The bytes cannot be taken as an edXML document at all (the CLI exits 2 for these)."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        where = f" (line {line}" + (f", column {column}" if column else "") + ")" if line else ""
        super().__init__(message + where)
        self.line = line
        self.column = column


class MalformedXml(XmlError):
    """Not well-formed XML."""


class UnsafeXml(XmlError):
    """A construct vbdt refuses to process: a DTD, entity declarations or references."""


class DocumentTooLarge(XmlError):
    """The document is over the configured size limit."""


class DocumentTooDeep(XmlError):
    """The document nests elements deeper than the configured limit."""


class NotEdxml(XmlError):
    """Well-formed XML, but not an edXML package or status message (wrong root or namespace)."""


class ValidationError(VbdtError):
    """The document breaks the schema or the business rules.

    ``findings`` holds every finding (errors and warnings); ``errors`` only the blocking ones.
    """

    def __init__(self, findings: Sequence[Finding], *, source: str | None = None) -> None:
        self.findings = list(findings)
        self.source = source
        errors = self.errors
        first = errors[0] if errors else (self.findings[0] if self.findings else None)
        head = f"{source}: " if source else ""
        if first is None:
            super().__init__(f"{head}invalid document")
        else:
            more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
            super().__init__(f"{head}{first.one_line()}{more}")

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity error."""
        from vbdt.findings import Severity

        return [f for f in self.findings if f.severity is Severity.ERROR]


class AttachmentError(VbdtError):
    """An attachment's content cannot be decoded or read."""


class DirectoryError(VbdtError):
    """A problem with the agency directory (its file, its data, or a query)."""


class UnknownAgency(DirectoryError, KeyError):
    """The directory has no agency with this OrganId."""

    def __init__(self, organ_id: str) -> None:
        super().__init__(f"unknown agency {organ_id!r}: not in the directory")
        self.organ_id = organ_id

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class InvalidSelector(DirectoryError, ValueError):
    """A recipient selector cannot be parsed or names a level that does not exist."""
