"""What a receiver does with bytes off the wire, without touching the wire: parse, validate, verify.

:func:`admit` takes a message body and the broker-authenticated publisher and either returns the
:class:`Admitted` package (what was signed, by whom, the verdict on its PDFs, the digest of its
signed content) or raises :class:`~vbdt.errors.MessageRejected` with the stage and the reason.
It is total: whatever the format and trust layers raise on hostile bytes, a bug included, comes
out as a ``MessageRejected`` (a bug is also logged at ERROR with its traceback, for the developers).

One parse per message: the body is parsed once; that tree is repaired-checked and validated
against the schema, its signature checked (:func:`vbdt.trust.xmldsig.check_signature`, before the
model is built, since building moves the attachments' text out of the tree), the model built from
it once, the rules run, and the model bound to the signer. Refusals keep the order of the stages:
a package both invalid and badly signed is refused at ``validate``.

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
from vbdt.edxml.reader import parse_tree
from vbdt.edxml.rules import parse_document_id
from vbdt.edxml.validation import check_tree, report_tree
from vbdt.edxml.xmlparse import DEFAULT_LIMITS, DS_NS, EDXML_NS, Limits
from vbdt.errors import MessageRejected, PdfSignatureError, VbdtError, XmlError
from vbdt.trust.chain import TrustStore
from vbdt.trust.packaging import PdfPolicy, Unpacked, check_pdfs, unpack
from vbdt.trust.xmldsig import SignatureCheck, Verified, bind_package, check_signature, verify

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
    trust: str | Path | TrustStore,
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


def _admit(body: bytes, stage: _Stage, *, me: str, publisher: str | None, trust: str | Path | TrustStore, directory: Directory | None,
           pdf_policy: PdfPolicy, legacy_sha1: bool, check_publisher: bool, limits: Limits) -> Admitted:
    if len(body) > limits.max_bytes:
        raise MessageRejected(f"{len(body):,} bytes is over the {limits.max_bytes:,}-byte limit", stage="parse")
    # One parse: the tree that is validated is the tree whose signature is checked and from which
    # the model is built, once.
    try:
        tree, findings = parse_tree(body, limits, lenient=False)
        findings += check_tree(tree, lenient=False)
    except XmlError as exc:
        raise MessageRejected(f"not a readable edXML package: {exc}", stage="parse") from None
    stage.name = "validate"
    # Strict, a check that found nothing changed nothing: the tree is the bytes as signed. The
    # signature is checked before the model is built (building moves the attachments' text out),
    # and its failure is told after validation's, in the order of the stages.
    check: SignatureCheck | VbdtError | None = None
    if not findings:
        try:
            check = check_signature(tree, trust=trust, legacy_sha1=legacy_sha1, limits=limits)
        except VbdtError as exc:
            check = exc
    digest = _tree_digest(tree) if isinstance(check, SignatureCheck) else None
    try:
        report = report_tree(tree, findings, directory=directory, limits=limits)
    except XmlError as exc:
        raise MessageRejected(f"not a readable edXML package: {exc}", stage="parse") from None
    del tree
    if not report.valid:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise MessageRejected(f"invalid package: {first.one_line()}{more}", stage="validate")
    stage.name = "verify"
    assert report.package is not None
    if isinstance(check, VbdtError):
        raise MessageRejected(str(check), stage="verify")  # the envelope: nothing is authenticated
    if check is None:  # a warning changed the tree (none does when strict): verify the bytes as sent
        unpacked = _unpack(body, trust=trust, directory=directory, legacy_sha1=legacy_sha1, pdf_policy=pdf_policy,
                           limits=limits)
        digest = signed_digest(body)
    else:
        unpacked = _check_pdfs(check, report.package, trust=trust, directory=directory, pdf_policy=pdf_policy,
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
    return Admitted(unpacked, sender, package_kind(package), document_id, digest or signed_digest(body))


def _answerable(package: Package) -> bool:
    """A document or a recall request may be answered with a 02; a receipt never (no receipt loops)."""
    return isinstance(package, Document) or package.status_code is StatusCode.RECALL_REQUESTED


def _answered_id(package: Package) -> str | None:
    return package.document_id if isinstance(package, Document) else package.response_for.document_id


def _check_pdfs(check: SignatureCheck, package: Package, *, trust: str | Path | TrustStore, directory: Directory | None,
                pdf_policy: PdfPolicy, limits: Limits) -> Unpacked:
    """The sender binding, then the PDFs, for an envelope whose signature checked on the validated tree."""
    try:
        verified = bind_package(check, package, directory=directory)
    except VbdtError as exc:  # the binding: nothing is authenticated
        raise MessageRejected(str(exc), stage="verify") from None
    try:
        return check_pdfs(verified, trust=trust, directory=directory, pdf_policy=pdf_policy, limits=limits)
    except PdfSignatureError as exc:
        reason = str(exc)
    except VbdtError as exc:  # e.g. two attachments of one name: refused as unpack() refuses them
        raise MessageRejected(str(exc), stage="verify") from None
    except Exception as exc:  # a PDF library's own exception (or a bug): log it, then as above
        log.error("verification of the PDFs of %s failed unexpectedly", verified.agency, exc_info=True)
        reason = f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"
    if not _answerable(package):
        raise MessageRejected(reason, stage="verify")
    raise MessageRejected(reason, stage="verify", sender=verified.agency, document_id=_answered_id(package))


def _unpack(body: bytes, *, trust: str | Path | TrustStore, directory: Directory | None, legacy_sha1: bool, pdf_policy: PdfPolicy,
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


def _envelope(body: bytes, *, trust: str | Path | TrustStore, directory: Directory | None, legacy_sha1: bool,
              limits: Limits) -> Verified | None:
    try:
        return verify(body, trust=trust, directory=directory, legacy_sha1=legacy_sha1, limits=limits)
    except Exception:  # refused already; this only decides whether the refusal can be answered
        return None


_DIGEST_PATH = (f"{{{DS_NS}}}Reference", f"{{{DS_NS}}}SignedInfo", f"{{{DS_NS}}}Signature",
                f"{{{EDXML_NS}}}edXMLHeader", f"{{{EDXML_NS}}}edXMLEnvelope")


def _tree_digest(tree: etree._ElementTree) -> str:
    """:func:`signed_digest` read off the tree whose signature was checked (no second parse)."""
    for element in tree.getroot().iterfind("/".join(reversed(_DIGEST_PATH)) + f"/{{{DS_NS}}}DigestValue"):
        method = element.getprevious()
        if method is not None:
            return _digest_of(method.get("Algorithm"), element.text)
    raise MessageRejected("the signature has no DigestValue where the profile puts it", stage="verify")


def _digest_of(algorithm: str | None, value: str | None) -> str:
    seen = f"{algorithm}\n{(value or '').strip()}"
    return hashlib.sha256(seen.encode()).hexdigest()


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
            return _digest_of(method.get("Algorithm"), element.text)
    raise MessageRejected("the signature has no DigestValue where the profile puts it", stage="verify")


def reply_target(publisher: str | None, directory: Directory | None) -> str | None:
    """Whom to send a rejection to: the authenticated publisher, when it is a known agency."""
    if publisher is None:
        return None
    if directory is not None:
        return publisher if publisher in directory else None
    from vbdt.edxml.organid import OrganId

    return publisher if OrganId.lenient(publisher).is_standard else None
