"""What a receiver does with bytes off the wire, without touching the wire: parse, validate, verify.

:func:`admit` takes a message body and the broker-authenticated publisher and either returns the
:class:`Admitted` package (what was signed, by whom, the verdict on its PDFs, the digest of its
signed content) or raises :class:`~vbdt.errors.MessageRejected` with the stage and the reason.
It is total: whatever the format and trust layers raise on hostile bytes, a bug included, comes
out as a ``MessageRejected`` (a bug is also logged at ERROR with its traceback, for the developers).

A rejection names the sender and the DocumentId to answer (with a 02) only when the signature
was verified: nothing a peer did not sign is ever used to address an answer.

The agency client (:mod:`vbdt.exchange.receiving`) does the I/O around it: de-duplication and
storage in the ledger, the signed receipts (01 on success, 02 with the reason on failure), the
dead-lettering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import BusinessDocType, StatusCode
from vbdt.edxml.model import Document, Package, StatusMessage
from vbdt.edxml.rules import parse_document_id
from vbdt.edxml.validation import validate
from vbdt.edxml.xmlparse import DEFAULT_LIMITS, DS_NS, EDXML_NS, Limits
from vbdt.errors import MessageRejected, PdfSignatureError, VbdtError, XmlError
from vbdt.trust.packaging import PdfPolicy, Unpacked, unpack
from vbdt.trust.xmldsig import Verified, verify

__all__ = ["Admitted", "admit", "concerned_documents", "package_kind", "reply_target", "signed_digest"]

log = logging.getLogger("vbdt.exchange.pipeline")

_CHANGES = (BusinessDocType.REVOKE, BusinessDocType.UPDATE, BusinessDocType.REPLACE)


@dataclass(frozen=True)
class Admitted:
    """A received package that passed every check."""

    unpacked: Unpacked
    sender: str
    kind: str
    """``document`` or ``status``."""
    document_id: str
    """The DocumentId of the document (or, for a status, of the document it is about)."""
    digest: str
    """SHA-256 of the signature's own digest of the signed content: the same for a redelivery (or a
    re-signing of the same content), different for other content under the same DocumentId."""

    @property
    def package(self) -> Package:
        """What was signed."""
        return self.unpacked.package


def package_kind(package: Package) -> str:
    """``document`` or ``status``."""
    return "status" if isinstance(package, StatusMessage) else "document"


def concerned_documents(package: Package) -> list[str]:
    """The DocumentIds a package asks the receiver to change: a recall request's (13), or those a
    revocation, update or replacement names. Only their issuer may ask (see :func:`admit`)."""
    if isinstance(package, StatusMessage):
        wanted = package.status_code is StatusCode.RECALL_REQUESTED and package.response_for.document_id
        return [package.response_for.document_id] if wanted and package.response_for.document_id else []
    business = package.business
    if business.doc_type not in _CHANGES:
        return []
    ids = [business.document_id] if business.document_id else [r.document_id for r in package.response_for if r.document_id]
    return [*ids, *(r.document_id for r in business.replacements)]


class _Stage:
    """Where admission is, so that an unexpected failure is reported at the right stage."""

    def __init__(self) -> None:
        self.name = "parse"


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
    """Every check a received package must pass, in order; :class:`MessageRejected` at the first
    failure, and nothing else, whatever the bytes."""
    stage = _Stage()
    try:
        return _admit(body, stage, me=me, publisher=publisher, trust=trust, directory=directory, pdf_policy=pdf_policy,
                      legacy_sha1=legacy_sha1, check_publisher=check_publisher, limits=limits)
    except MessageRejected:
        raise
    except VbdtError as exc:
        raise MessageRejected(str(exc), stage=stage.name) from None
    except Exception as exc:  # a lower layer let a foreign exception out: a bug, but never the receiver's end
        log.error("admission of a %d-byte message failed unexpectedly at %s", len(body), stage.name, exc_info=True)
        raise MessageRejected(f"unreadable ({type(exc).__name__}: {str(exc)[:200]})", stage=stage.name) from None


def _admit(body: bytes, stage: _Stage, *, me: str, publisher: str | None, trust: str | Path, directory: Directory | None,
           pdf_policy: PdfPolicy, legacy_sha1: bool, check_publisher: bool, limits: Limits) -> Admitted:
    if len(body) > limits.max_bytes:
        raise MessageRejected(f"{len(body):,} bytes is over the {limits.max_bytes:,}-byte limit", stage="parse")
    try:
        report = validate(body, directory=directory, limits=limits)
    except XmlError as exc:
        raise MessageRejected(f"not a readable edXML package: {exc}", stage="parse") from None
    stage.name = "validate"
    if not report.valid:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise MessageRejected(f"invalid package: {first.one_line()}{more}", stage="validate")
    stage.name = "verify"
    unpacked = _unpack(body, trust=trust, directory=directory, legacy_sha1=legacy_sha1, pdf_policy=pdf_policy,
                       limits=limits)
    package = unpacked.package
    sender = str(package.sender.organ_id)
    stage.name = "publisher"
    if check_publisher and publisher != sender:
        raise MessageRejected(
            f"published by broker user {publisher!r}, but the package is from {sender}: an agency publishes only as itself",
            stage="publisher",
        )
    # From here on the sender and what it signed are authenticated: a refusal can be answered.
    answer_to, answer_about = (sender, _answered_id(package)) if _answerable(package) else (None, None)

    def refuse(reason: str, stage_name: str) -> MessageRejected:
        return MessageRejected(reason, stage=stage_name, sender=answer_to, document_id=answer_about)

    stage.name = "recipient"
    if isinstance(package, Document):
        if me not in {str(r.organ_id) for r in package.recipients}:
            raise refuse(f"{me} is not among the recipients (To) of {package.document_id}", "recipient")
        document_id = str(package.document_id)
    else:
        about = package.response_for
        # A receipt is about a document we issued; a recall request (13) about one its sender issued.
        owner = sender if package.status_code is StatusCode.RECALL_REQUESTED else me
        if str(about.organ_id) != owner:
            raise refuse(f"a status {package.status_code.value} about a document of {about.organ_id}, "
                         f"expected one of {owner}", "recipient")
        if not about.document_id:
            raise refuse("a status message that names no DocumentId", "validate")
        document_id = about.document_id
    stage.name = "owner"
    for concerned in concerned_documents(package):
        issuer = (parse_document_id(concerned) or ("?",))[0]
        if issuer != sender:
            raise refuse(f"only the issuer of {concerned} may recall, revoke, update or replace it; {sender} is not", "owner")
    stage.name = "digest"
    return Admitted(unpacked, sender, package_kind(package), document_id, signed_digest(body))


def _answerable(package: Package) -> bool:
    """A document or a recall request may be answered with a 02; a receipt never (no receipt loops)."""
    return isinstance(package, Document) or package.status_code is StatusCode.RECALL_REQUESTED


def _answered_id(package: Package) -> str | None:
    return package.document_id if isinstance(package, Document) else package.response_for.document_id


def _unpack(body: bytes, *, trust: str | Path, directory: Directory | None, legacy_sha1: bool, pdf_policy: PdfPolicy,
            limits: Limits) -> Unpacked:
    """The envelope, then the PDFs; a PDF that fails after the envelope verified names what to answer."""
    try:
        return unpack(body, trust=trust, directory=directory, legacy_sha1=legacy_sha1, pdf_policy=pdf_policy,
                      limits=limits)
    except PdfSignatureError as exc:
        reason = str(exc)
    except VbdtError as exc:  # the envelope: nothing is authenticated
        raise MessageRejected(str(exc), stage="verify") from None
    except Exception as exc:  # a PDF library's own exception (or a bug): log it, then as above
        log.error("verification of a %d-byte message failed unexpectedly", len(body), exc_info=True)
        reason = f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"
    # Verify the envelope alone (only for refused messages) to learn whether anything is authenticated.
    envelope = _envelope(body, trust=trust, directory=directory, legacy_sha1=legacy_sha1, limits=limits)
    if envelope is None or not _answerable(envelope.package):
        raise MessageRejected(reason, stage="verify")
    raise MessageRejected(reason, stage="verify", sender=envelope.agency, document_id=_answered_id(envelope.package))


def _envelope(body: bytes, *, trust: str | Path, directory: Directory | None, legacy_sha1: bool,
              limits: Limits) -> Verified | None:
    try:
        return verify(body, trust=trust, directory=directory, legacy_sha1=legacy_sha1, limits=limits)
    except Exception:  # refused already; this only decides whether the refusal can be answered
        return None


_DIGEST_PATH = (f"{{{DS_NS}}}Reference", f"{{{DS_NS}}}SignedInfo", f"{{{DS_NS}}}Signature",
                f"{{{EDXML_NS}}}edXMLHeader", f"{{{EDXML_NS}}}edXMLEnvelope")


def signed_digest(body: bytes) -> str:
    """SHA-256 of the DigestMethod and DigestValue of a verified package's one Reference.

    The signature's digest covers the whole signed content (its ``URI=""``), so this tells the same
    content from other content without hashing the body again: the parse stops at the header,
    before the attachments. Call it on a package :func:`admit` verified (the profile guarantees the
    one Reference at the end of ``edXMLHeader``)."""
    parser = etree.iterparse(io.BytesIO(body), events=("end",), tag=f"{{{DS_NS}}}DigestValue", resolve_entities=False,
                             no_network=True, load_dtd=False, huge_tree=True)
    for _, element in parser:
        ancestors = [a.tag for a in element.iterancestors()][: len(_DIGEST_PATH)]
        method = element.getprevious()
        if tuple(ancestors) == _DIGEST_PATH and method is not None:
            seen = f"{method.get('Algorithm')}\n{(element.text or '').strip()}"
            return hashlib.sha256(seen.encode()).hexdigest()
    raise MessageRejected("the signature has no DigestValue where the profile puts it", stage="verify")


def reply_target(publisher: str | None, directory: Directory | None) -> str | None:
    """Whom to send a rejection to: the authenticated publisher, when it is a known agency."""
    if publisher is None:
        return None
    if directory is not None:
        return publisher if publisher in directory else None
    from vbdt.edxml.organid import OrganId

    return publisher if OrganId.lenient(publisher).is_standard else None
