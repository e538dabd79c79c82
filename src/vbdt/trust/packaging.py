"""Both signature layers of a package: the PDFs inside, then the envelope around them.

:func:`pack` signs every PDF attachment that is not signed yet (the competent person, then the
agency seal, :mod:`vbdt.pades`) and then signs the edXML envelope with the agency key
(:mod:`vbdt.signing`), so the envelope signature covers the signed PDFs. :func:`unpack` does the
reverse on receipt: verify the envelope and the sender binding, then every PDF attachment, and
hand back what was signed with the verdict on each PDF.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509

from vbdt.errors import PdfSignatureError
from vbdt.keys import SigningKey, load_certificates
from vbdt.model import Attachment, Document, Package
from vbdt.pades import PdfVerification, is_signed_pdf, sign_pdf, verify_pdf
from vbdt.signing import Verified, sign, verify

__all__ = ["PdfPolicy", "Unpacked", "is_pdf", "pack", "unpack"]

PdfPolicy = Literal["require", "report", "ignore"]
"""What :func:`unpack` does with PDFs that are not original-valid: raise, only report, or skip checking."""


def is_pdf(attachment: Attachment) -> bool:
    """Whether an attachment is a PDF (by content type or name)."""
    return attachment.content_type.lower() == "application/pdf" or attachment.name.lower().endswith(".pdf")


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
    produced, and re-signing would add a second person's signature.
    """
    if isinstance(package, Document) and (person is not None or seal is not None):
        attachments = [
            _signed(a, person=person, seal=seal, timestamper=timestamper, visible=visible) for a in package.attachments
        ]
        package = package.model_copy(update={"attachments": attachments})
    return sign(package, key)


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
    """Attachment name → verification (empty when PDFs were not checked)."""

    @property
    def package(self) -> Package:
        """What was signed."""
        return self.verified.package


def unpack(
    data: bytes,
    *,
    trust: str | Path,
    directory: object | None = None,
    legacy_sha1: bool = False,
    pdf_policy: PdfPolicy = "require",
    at: dt.datetime | None = None,
    crls: list[x509.CertificateRevocationList] | None = None,
    anchors: list[x509.Certificate] | None = None,
) -> Unpacked:
    """Verify the envelope (raises a :class:`~vbdt.errors.TrustError`), then the PDFs.

    With ``pdf_policy="require"`` a PDF that is not original-valid (person and agency signatures,
    both intact and trusted) raises :class:`~vbdt.errors.PdfSignatureError`. ``anchors`` are the
    parsed trust anchors (``trust`` is read when they are not given; pass them to avoid re-reading).
    """
    verified = verify(data, trust=trust, directory=directory, legacy_sha1=legacy_sha1, at=at, crls=crls)
    pdfs: dict[str, PdfVerification] = {}
    package = verified.package
    if pdf_policy != "ignore" and isinstance(package, Document):
        roots = anchors if anchors is not None else load_certificates(trust)
        for attachment in package.attachments:
            if not is_pdf(attachment):
                continue
            result = verify_pdf(attachment.read(), trust=roots, at=at, crls=crls or ())
            if pdf_policy == "require" and not result.original_valid:
                raise PdfSignatureError(f"attachment {attachment.name} is not original-valid: {'; '.join(result.reasons)}")
            pdfs[attachment.name] = result
    return Unpacked(verified, pdfs)
