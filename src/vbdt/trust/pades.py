"""PAdES signatures of the attached PDF: the competent person's, then the agency's seal.

Decree 30/2020 gives an electronic document the value of the original when its PDF carries the
digital signature of the competent person *and* the digital signature of the agency (the seal).
:func:`sign_pdf` adds them as two incremental PAdES signatures (B-B, or B-T when a time-stamp
server is configured), the person's first; both stay valid because the second revision only adds
a signature field. With ``visible=True`` each gets an appearance: the person's signature box, and
the seal box over the left third of it, as the decree's annex describes.

:func:`verify_pdf` reports, for every signature, who signed and when, whether the signed bytes
are intact, whether the certificate chains to the configured anchors, and whether anything was
changed after it. Roles come from the certificate: one that names an OrganId in its subject UID
(how vbdt binds certificates to agencies, :mod:`vbdt.keys`) is an agency seal, any other a person.

pyHanko does the PDF and CMS work; the key never leaves the :class:`~vbdt.keys.SigningKey` it was
loaded into (pyHanko's own ``SimpleSigner`` would re-parse the private key for every signature).
Stamp text uses a standard PDF font, so it is written without Vietnamese diacritics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import io
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from vbdt.errors import KeyFileError, PdfSignatureError
from vbdt.keys import SigningKey, certificate_organ_id, load_certificates, revocation

__all__ = ["PdfSignatureInfo", "PdfVerification", "is_signed_pdf", "sign_pdf", "verify_pdf"]

T = TypeVar("T")

PERSON = "person"
AGENCY = "agency"

# A4 portrait, lower right: where Vietnamese documents carry the signature block.
_PERSON_BOX = (330, 90, 540, 170)


class _KeySigner(signers.Signer):
    """A pyHanko signer over an already-loaded :class:`SigningKey` (or any key with ``sign``)."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        registry = SimpleCertificateStore.from_certs([_asn1(c) for c in key.chain])  # type: ignore[no-untyped-call]
        super().__init__(signing_cert=_asn1(key.certificate), cert_registry=registry, embed_roots=False)

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[digest_algorithm]
        private = self._key.private_key
        if isinstance(private, rsa.RSAPrivateKey):
            return private.sign(data, padding.PKCS1v15(), algorithm)
        return private.sign(data, ec.ECDSA(algorithm))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run pyHanko's coroutine to completion from synchronous code, even inside a running loop.

    pyHanko's sync API calls ``asyncio.run``, which fails inside an event loop (an async DMS calling
    :func:`vbdt.pack`). There, the coroutine runs on a worker thread with its own loop; async
    callers that must not block should call these functions through ``asyncio.to_thread``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def is_signed_pdf(data: bytes) -> bool:
    """Whether ``data`` is a PDF with at least one embedded signature."""
    try:
        return bool(PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures)
    except Exception:
        return False


def sign_pdf(
    pdf: bytes,
    *,
    person: SigningKey | None,
    seal: SigningKey | None,
    timestamper: str | TimeStamper | None = None,
    visible: bool = False,
    page: int = -1,
    reason: str = "Ky ban hanh van ban",
    location: str | None = None,
) -> bytes:
    """Add the person's signature, then the agency's seal, as incremental PAdES signatures.

    Either may be ``None`` (for instance when the person signed in another system and only the
    seal is added here). ``timestamper`` is a TSA URL or a pyHanko ``TimeStamper``: with one the
    signatures are PAdES B-T, without B-B. Returns the signed PDF bytes.
    """
    if person is None and seal is None:
        raise PdfSignatureError("nothing to sign with: give the person's key, the agency's seal key, or both")
    stamper = HTTPTimeStamper(timestamper) if isinstance(timestamper, str) else timestamper
    data = pdf
    existing = _signature_count(data)
    if person is not None:
        box = _PERSON_BOX if visible else None
        data = _add_signature(data, person, f"Signature{existing + 1}_{PERSON}", stamper, box, page, reason, location,
                              "Ky boi: %(signer)s\nThoi gian: %(ts)s")
    if seal is not None:
        x1, y1, x2, y2 = _PERSON_BOX
        # The seal covers the left third of the person's signature (Decree 30/2020, annex I).
        side = y2 - y1
        third = x1 + (x2 - x1) // 3
        box = (third - side, y1, third, y2) if visible else None
        data = _add_signature(data, seal, f"Signature{_signature_count(data) + 1}_{AGENCY}", stamper, box, page,
                              reason, location, "%(signer)s\n%(ts)s")
    return data


def _signature_count(data: bytes) -> int:
    try:
        return len(PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise PdfSignatureError(f"not a readable PDF: {exc}") from None


def _add_signature(
    data: bytes,
    key: SigningKey,
    field_name: str,
    stamper: TimeStamper | None,
    box: tuple[int, int, int, int] | None,
    page: int,
    reason: str,
    location: str | None,
    stamp_text: str,
) -> bytes:
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        on_page = page if page >= 0 else int(writer.root["/Pages"]["/Count"]) + page
        meta = signers.PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            location=location,
        )
        pdf_signer = signers.PdfSigner(
            meta,
            signer=_KeySigner(key),
            timestamper=stamper,
            stamp_style=TextStampStyle(stamp_text=stamp_text, border_width=1) if box else None,
            new_field_spec=fields.SigFieldSpec(field_name, box=box, on_page=on_page),
        )
        out = io.BytesIO()
        _run(pdf_signer.async_sign_pdf(writer, output=out))
        return out.getvalue()
    except (PdfError, SigningError, ValueError, KeyError, TypeError) as exc:
        raise PdfSignatureError(f"cannot sign the PDF: {exc}") from None


@dataclass(frozen=True)
class PdfSignatureInfo:
    """One signature of a PDF, as the verifier saw it."""

    field_name: str
    """The PDF signature field."""
    role: str
    """``person`` or ``agency`` (the certificate names an OrganId)."""
    signer: str
    """Certificate subject (RFC 4514)."""
    organ_id: str | None
    signing_time: dt.datetime | None
    """The time the signer claims (signed attribute)."""
    timestamp: dt.datetime | None
    """The time a trusted time-stamp proves (PAdES B-T), if any."""
    intact: bool
    """The signed bytes are unchanged."""
    trusted: bool
    """The certificate chains to a trust anchor and was valid."""
    whole_file: bool
    """Nothing at all was appended after this signature."""
    modified_after: str
    """What later revisions changed: ``none``, ``signatures``, ``form filling``, ``annotations`` or ``other``."""
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """Intact, trusted, and nothing but signatures or form filling added after it."""
        return self.intact and self.trusted and self.modified_after in ("none", "signatures", "form filling")


@dataclass(frozen=True)
class PdfVerification:
    """Every signature of a PDF and the verdict on the document as a whole."""

    signatures: list[PdfSignatureInfo]
    original_valid: bool
    """Every signature valid, with a person's signature and, after it, an agency's seal."""
    reasons: list[str]
    """Why the document is not original-valid (empty when it is)."""

    def require_original(self, name: str = "PDF") -> PdfVerification:
        """Return self, or raise :class:`PdfSignatureError` with the reasons."""
        if not self.original_valid:
            raise PdfSignatureError(f"{name} is not original-valid: {'; '.join(self.reasons)}")
        return self

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "original_valid": self.original_valid,
            "reasons": self.reasons,
            "signatures": [
                {
                    "field": s.field_name, "role": s.role, "signer": s.signer, "organ_id": s.organ_id,
                    "signing_time": s.signing_time.isoformat() if s.signing_time else None,
                    "timestamp": s.timestamp.isoformat() if s.timestamp else None,
                    "intact": s.intact, "trusted": s.trusted, "whole_file": s.whole_file,
                    "modified_after": s.modified_after, "valid": s.valid, "problems": s.problems,
                }
                for s in self.signatures
            ],
        }


def verify_pdf(
    data: bytes,
    *,
    trust: str | Path | Sequence[x509.Certificate],
    at: dt.datetime | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
) -> PdfVerification:
    """Verify every signature of a PDF against the trust anchors (never the system store)."""
    anchors = load_certificates(trust) if isinstance(trust, str | Path) else list(trust)
    if not anchors:
        raise KeyFileError("no trust anchors given")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise PdfSignatureError(f"not a readable PDF: {exc}") from None
    roots = [_asn1(c) for c in anchors]
    der_crls = [asn1_crl.CertificateList.load(c.public_bytes(serialization.Encoding.DER)) for c in crls]
    infos = [_run(_check(sig, roots, der_crls, list(crls), at)) for sig in embedded]
    return PdfVerification(infos, *_verdict(infos))


async def _check(sig: object, roots: list[asn1_x509.Certificate], crls: list[asn1_crl.CertificateList],
                 x509_crls: list[x509.CertificateRevocationList], at: dt.datetime | None) -> PdfSignatureInfo:
    context = ValidationContext(
        trust_roots=roots, allow_fetching=False, crls=crls, moment=at,
        revocation_mode="hard-fail" if crls else "soft-fail",
    )
    field_name = str(getattr(sig, "field_name", "?"))
    try:
        status = await async_validate_pdf_signature(
            sig,  # type: ignore[arg-type]
            signer_validation_context=context,
        )
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
        return PdfSignatureInfo(field_name, PERSON, "?", None, None, None, False, False, False, "other",
                                [f"cannot validate: {exc}"])
    cert = x509.load_der_x509_certificate(status.signing_cert.dump())
    organ_id = certificate_organ_id(cert)
    problems: list[str] = []
    if not status.intact:
        problems.append("the signed bytes were changed")
    elif not status.valid:
        problems.append("the signature value does not verify")
    trusted = bool(status.trusted)
    if not trusted:
        indication = status.trust_problem_indic
        problems.append(f"certificate not trusted ({getattr(indication, 'name', str(indication)).lower() if indication else 'no chain to an anchor'})")
    # The certificate validator only consults CRLs for certificates that name a distribution
    # point; a CRL the caller configured applies whatever the certificate says.
    revoked = revocation(cert, x509_crls)
    if revoked:
        trusted = False
        problems.append(revoked)
    level = status.modification_level
    modified = "other"
    if level is not None:
        modified = {"NONE": "none", "LTA_UPDATES": "signatures", "FORM_FILLING": "form filling",
                    "ANNOTATIONS": "annotations"}.get(level.name, "other")
    whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    if modified in ("annotations", "other"):
        problems.append(f"the document was changed after this signature ({modified})")
    tst = status.timestamp_validity
    return PdfSignatureInfo(
        field_name=field_name,
        role=AGENCY if organ_id else PERSON,
        signer=cert.subject.rfc4514_string(),
        organ_id=organ_id,
        signing_time=status.signer_reported_dt,
        timestamp=tst.timestamp if tst is not None and tst.valid and tst.intact else None,
        intact=bool(status.intact and status.valid),
        trusted=trusted,
        whole_file=whole,
        modified_after="none" if whole else modified,
        problems=problems,
    )


def _verdict(infos: list[PdfSignatureInfo]) -> tuple[bool, list[str]]:
    reasons = [f"{s.field_name} ({s.signer}): {', '.join(s.problems)}" for s in infos if not s.valid]
    roles = [s.role for s in infos]
    if not infos:
        reasons.append("the PDF is not signed")
    elif PERSON not in roles:
        reasons.append("no signature of the competent person")
    elif AGENCY not in roles[roles.index(PERSON) + 1:]:
        reasons.append("no agency seal signature after the person's signature")
    return not reasons, reasons
