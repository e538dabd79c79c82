"""Both signature layers of a package: the PDFs inside, then the envelope around them.

:func:`pack` signs every PDF attachment that is not signed yet (the competent person, then the
agency seal, :mod:`vbdt.trust.pades`) and then signs the edXML envelope with the agency key
(:mod:`vbdt.trust.xmldsig`), so the envelope signature covers the signed PDFs. :func:`unpack` does the
reverse on receipt: verify the envelope and the sender binding, then every PDF attachment against
that sender, and hand back what was signed with the verdict on each PDF.

Two rules keep a PDF from hiding (both in :func:`pack` and :func:`unpack`):

- **A PDF is recognised by its content**: ``%PDF-`` in its first 1024 bytes, where PDF readers
  look for it, whatever its name or content type (``x.pdf ``, ``x.pdf.bin`` and
  ``application/x-pdf`` are all PDFs if the bytes say so). An attachment *labelled* a PDF (by
  ``application/pdf`` or a ``.pdf`` name) is checked too, and fails if it is not one.
- **Attachment names are unique** in a package, compared by :func:`name_key`: Unicode NFKC, case
  folded, invisible format characters (zero-width, bidi controls) dropped, runs of whitespace
  made one space, and surrounding whitespace and dots removed (as Windows does when saving). Two
  names equal under that comparison raise :class:`~vbdt.errors.DuplicateAttachment`, so the
  verdicts, keyed by name, are one per attachment.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509

from vbdt.directory.agencies import Directory
from vbdt.edxml.attachment import Base64Content
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.model import Attachment, Document, Package
from vbdt.edxml.rules import parse_document_id
from vbdt.errors import DuplicateAttachment, PdfSignatureError
from vbdt.trust.chain import TrustStore
from vbdt.trust.keys import SigningKey, load_certificates
from vbdt.trust.pades import PdfVerification, is_signed_pdf, sign_pdf, verify_pdf
from vbdt.trust.xmldsig import Verified, sign, verify

__all__ = ["PdfPolicy", "Unpacked", "check_pdfs", "check_unique_names", "is_pdf", "name_key", "pack", "relay_origins",
           "relayed_pdf", "sign_pdfs", "unpack"]

PdfPolicy = Literal["require", "report", "ignore"]
"""What :func:`unpack` does with PDFs that are not original-valid: raise, only report, or skip checking."""

_PDF_MAGIC = b"%PDF-"
_SNIFF_BYTES = 1024  # PDF readers accept the header anywhere in the first 1024 bytes
_WHITESPACE = re.compile(r"\s+")


def name_key(name: str) -> str:
    """The form in which two attachment names are compared (see the module)."""
    text = unicodedata.normalize("NFKC", name)
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return _WHITESPACE.sub(" ", visible).strip().strip(". ").casefold()


def check_unique_names(attachments: Iterable[Attachment]) -> None:
    """Raise :class:`DuplicateAttachment` when two attachments have the same :func:`name_key`."""
    seen: dict[str, str] = {}
    for a in attachments:
        key = name_key(a.name)
        if key in seen:
            raise DuplicateAttachment(seen[key], a.name)
        seen[key] = a.name


def _head(attachment: Attachment) -> bytes:
    """The first bytes of the content, decoding only a prefix of base64 text that came in a package."""
    content = attachment.content
    if isinstance(content, Base64Content):
        prefix = content.base64()[: (_SNIFF_BYTES // 3 + 1) * 4]
        try:
            return binascii.a2b_base64(prefix)[:_SNIFF_BYTES]
        except (binascii.Error, ValueError):
            pass  # read() says what is wrong with the base64, as an AttachmentError
    return attachment.read()[:_SNIFF_BYTES]


def _labelled_pdf(attachment: Attachment) -> bool:
    return attachment.content_type.strip().lower() == "application/pdf" or name_key(attachment.name).endswith(".pdf")


def is_pdf(attachment: Attachment) -> bool:
    """Whether an attachment must be treated as a PDF: its content starts like one, or it is labelled one."""
    return _PDF_MAGIC in _head(attachment) or _labelled_pdf(attachment)


def pack(
    package: Package,
    key: SigningKey,
    *,
    person: SigningKey | None = None,
    seal: SigningKey | None = None,
    timestamper: str | None = None,
    visible: bool = False,
) -> bytes:
    """Sign the PDFs (when ``person`` and/or ``seal`` are given), then the envelope with ``key``.

    PDFs that already carry signatures are left as they are: they were signed where they were
    produced, and re-signing would add a second person's signature. Attachment names must be
    unique (:class:`DuplicateAttachment` otherwise).
    """
    if isinstance(package, Document):
        package = sign_pdfs(package, person=person, seal=seal, timestamper=timestamper, visible=visible)
    return sign(package, key)


def sign_pdfs(document: Document, *, person: SigningKey | None = None, seal: SigningKey | None = None,
              timestamper: str | None = None, visible: bool = False) -> Document:
    """``document`` with its PDFs signed (PAdES: ``person``, then the agency ``seal``), the first step
    of :func:`pack`; PDFs already signed are left as they are. Attachment names must be unique."""
    check_unique_names(document.attachments)
    if person is None and seal is None:
        return document
    attachments = [_signed(a, person=person, seal=seal, timestamper=timestamper, visible=visible)
                   for a in document.attachments]
    return document.model_copy(update={"attachments": attachments})


def _signed(a: Attachment, *, person: SigningKey | None, seal: SigningKey | None, timestamper: str | None,
            visible: bool) -> Attachment:
    if not is_pdf(a):
        return a
    data = a.read()
    if is_signed_pdf(data):
        return a
    signed = sign_pdf(data, person=person, seal=seal, timestamper=timestamper, visible=visible)
    return Attachment.from_bytes(a.name, signed, content_id=a.content_id, content_type=a.content_type,
                                 description=a.description)


@dataclass(frozen=True)
class Unpacked:
    """A received package whose envelope verified, with the verdict on each PDF attachment."""

    verified: Verified
    pdfs: dict[str, PdfVerification]
    """Attachment name → verification of every PDF attachment (empty when PDFs were not checked).
    Names are unique in a package that unpacked, so no verdict hides another."""

    @property
    def package(self) -> Package:
        """What was signed."""
        return self.verified.package


def unpack(
    data: bytes,
    *,
    trust: str | Path | TrustStore,
    directory: Directory | None = None,
    legacy_sha1: bool = False,
    pdf_policy: PdfPolicy = "require",
    at: dt.datetime | None = None,
    crls: list[x509.CertificateRevocationList] | None = None,
    anchors: list[x509.Certificate] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Unpacked:
    """Verify the envelope (raises a :class:`~vbdt.errors.TrustError`), then the PDFs against its sender.

    Every PDF's agency seal must be bound to the envelope's sender (the same rule as the envelope,
    with the ``directory``'s pins). With ``pdf_policy="require"`` a PDF that is not original-valid
    raises :class:`~vbdt.errors.PdfSignatureError`; with ``"report"`` its verdict says why.
    Duplicate attachment names raise :class:`~vbdt.errors.DuplicateAttachment` under every policy.
    ``anchors`` are the parsed trust anchors (``trust`` is read when they are not given; pass them
    to avoid re-reading).
    """
    verified = verify(data, trust=trust, directory=directory, legacy_sha1=legacy_sha1, at=at, crls=crls,
                      limits=limits)
    return check_pdfs(verified, trust=trust, directory=directory, pdf_policy=pdf_policy, at=at, crls=crls,
                      anchors=anchors, limits=limits)


def check_pdfs(
    verified: Verified,
    *,
    trust: str | Path | TrustStore,
    directory: Directory | None = None,
    pdf_policy: PdfPolicy = "require",
    at: dt.datetime | None = None,
    crls: list[x509.CertificateRevocationList] | None = None,
    anchors: list[x509.Certificate] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Unpacked:
    """The second half of :func:`unpack`, for an envelope verified already (by
    :func:`~vbdt.trust.xmldsig.verify_tree` on a tree the caller parsed once): every PDF attachment
    against the envelope's sender, under ``pdf_policy``, with the same errors as :func:`unpack`."""
    pdfs: dict[str, PdfVerification] = {}
    package = verified.package
    if not isinstance(package, Document):
        return Unpacked(verified, pdfs)
    check_unique_names(package.attachments)
    if pdf_policy == "ignore":
        return Unpacked(verified, pdfs)
    all_crls = [*(trust.crls if isinstance(trust, TrustStore) else ()), *(crls or ())]
    roots = anchors if anchors is not None else trust.anchors if isinstance(trust, TrustStore) else load_certificates(trust)
    for attachment in package.attachments:
        if not is_pdf(attachment):
            continue
        try:
            result = verify_pdf(attachment.read(), trust=roots, agency=verified.agency, directory=directory, at=at,
                                crls=all_crls, limits=limits)
        except PdfSignatureError as exc:  # unreadable or over a limit: a verdict of its own under "report"
            result = PdfVerification([], False, [str(exc)])
        if not result.original_valid and result.signatures:  # perhaps a relay: sealed by the agency it names
            result = relayed_pdf(attachment.read(), result, package, verified.agency, trust=roots, directory=directory,
                                 at=at, crls=all_crls, limits=limits)
        if pdf_policy == "require" and not result.original_valid:
            raise PdfSignatureError(f"attachment {attachment.name} is not original-valid: {'; '.join(result.reasons)}")
        pdfs[attachment.name] = result
    return Unpacked(verified, pdfs)


def relay_origins(package: Document) -> set[str]:
    """The agencies whose documents ``package`` relays: every ``ResponseFor`` that names a document of
    its ``OrganId`` (a DocumentId issued by that agency, or a Code with a PromulgationDate), other
    than the package's own sender."""
    sender = str(package.sender.organ_id)
    origins: set[str] = set()
    for about in package.response_for:
        organ_id = str(about.organ_id)
        if about.document_id is not None:
            issuer = parse_document_id(about.document_id)
            names_its_document = issuer is not None and issuer[0] == organ_id
        else:
            names_its_document = about.code is not None and about.promulgation_date is not None
        if names_its_document and organ_id != sender:
            origins.add(organ_id)
    return origins


def relayed_pdf(data: bytes, first: PdfVerification, package: Document, sender: str, *,
                trust: list[x509.Certificate], directory: Directory | None, at: dt.datetime | None,
                crls: list[x509.CertificateRevocationList], limits: Limits) -> PdfVerification:
    """The verdict on a PDF that is not original-valid as the sender's: a relay's, when it is one.

    A relay (:mod:`vbdt.exchange.relay`) is a new document of ``sender`` that answers (``ResponseFor``)
    a document of agency X and carries X's signed PDF unchanged. Such a PDF is accepted when its
    seals name exactly one agency, X, that ``ResponseFor`` names as the issuer of the document
    relayed (:func:`relay_origins`), and it is original-valid as X's (every signature intact and
    trusted, X's seal bound to X as it would be on X's own package). Otherwise ``first``, the
    verdict against the sender, stands."""
    seals = {s.organ_id for s in first.signatures if s.role == "agency"}
    if len(seals) != 1 or None in seals:
        return first
    (origin,) = seals
    assert origin is not None
    if origin == sender or origin not in relay_origins(package):
        return first
    try:
        return verify_pdf(data, trust=trust, agency=origin, directory=directory, at=at, crls=crls, limits=limits)
    except PdfSignatureError:
        return first
