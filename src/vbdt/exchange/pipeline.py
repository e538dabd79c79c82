"""What a receiver does with bytes off the wire, without touching the wire: parse, validate, verify.

:func:`admit` takes a message body and the broker-authenticated publisher and either returns the
:class:`Admitted` package (what was signed, by whom, and the verdict on its PDFs) or raises
:class:`~vbdt.errors.MessageRejected` with the stage and the reason. It also says, when it can,
whom to tell (:func:`reply_target`): the broker-authenticated publisher when it is an agency,
never a ``From`` that nothing vouches for.

The agency client (:mod:`vbdt.agency`) does the I/O around it: de-duplication and storage in the
ledger, the signed receipts (01 on success, 02 with the reason on failure), the dead-lettering.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from vbdt.codes import StatusCode
from vbdt.directory import Directory
from vbdt.errors import TrustError, ValidationError, VbdtError, XmlError
from vbdt.model import Document, Package, StatusMessage
from vbdt.packaging import PdfPolicy, Unpacked, unpack
from vbdt.validation import validate
from vbdt.xmlparse import DEFAULT_LIMITS, Limits

__all__ = ["Admitted", "admit", "package_kind", "reply_target"]


@dataclass(frozen=True)
class Admitted:
    """A received package that passed every check."""

    unpacked: Unpacked
    sender: str
    kind: str
    """``document`` or ``status``."""
    document_id: str
    """The DocumentId of the document (or, for a status, of the document it is about)."""

    @property
    def package(self) -> Package:
        """What was signed."""
        return self.unpacked.package


def package_kind(package: Package) -> str:
    """``document`` or ``status``."""
    return "status" if isinstance(package, StatusMessage) else "document"


def admit(
    body: bytes,
    *,
    me: str,
    publisher: str | None,
    trust: str | Path,
    directory: Directory | None,
    pdf_policy: PdfPolicy = "require",
    legacy_sha1: bool = False,
    check_publisher: bool = True,
    limits: Limits = DEFAULT_LIMITS,
    today: dt.date | None = None,
) -> Admitted:
    """Every check a received package must pass, in order; :class:`MessageRejected` at the first failure."""
    from vbdt.errors import MessageRejected

    if len(body) > limits.max_bytes:
        raise MessageRejected(f"{len(body):,} bytes is over the {limits.max_bytes:,}-byte limit", stage="parse")
    try:
        report = validate(body, directory=directory, limits=limits)
    except XmlError as exc:
        raise MessageRejected(f"not a readable edXML package: {exc}", stage="parse") from None
    if not report.valid:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise MessageRejected(f"invalid package: {first.one_line()}{more}", stage="validate")
    try:
        unpacked = unpack(body, trust=trust, directory=directory, legacy_sha1=legacy_sha1, pdf_policy=pdf_policy)
    except TrustError as exc:
        raise MessageRejected(str(exc), stage="verify") from None
    except (ValidationError, VbdtError) as exc:
        raise MessageRejected(str(exc), stage="verify") from None
    package = unpacked.package
    sender = str(package.sender.organ_id)
    if check_publisher and publisher != sender:
        raise MessageRejected(
            f"published by broker user {publisher!r}, but the package is from {sender}: an agency publishes only as itself",
            stage="publisher",
        )
    if isinstance(package, Document):
        if me not in {str(r.organ_id) for r in package.recipients}:
            raise MessageRejected(f"{me} is not among the recipients (To) of {package.document_id}", stage="recipient")
        document_id = str(package.document_id)
    else:
        about = package.response_for
        # A receipt is about a document we issued; a recall request (13) about one its sender issued.
        owner = sender if package.status_code is StatusCode.RECALL_REQUESTED else me
        if str(about.organ_id) != owner:
            raise MessageRejected(f"a status {package.status_code.value} about a document of {about.organ_id}, "
                                  f"expected one of {owner}", stage="recipient")
        if not about.document_id:
            raise MessageRejected("a status message that names no DocumentId", stage="validate")
        document_id = about.document_id
    return Admitted(unpacked, sender, package_kind(package), document_id)


def reply_target(publisher: str | None, directory: Directory | None) -> str | None:
    """Whom to send a rejection to: the authenticated publisher, when it is a known agency."""
    if publisher is None:
        return None
    if directory is not None:
        return publisher if publisher in directory else None
    from vbdt.organid import OrganId

    return publisher if OrganId.lenient(publisher).is_standard else None
