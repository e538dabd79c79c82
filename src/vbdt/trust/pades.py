"""PAdES signatures of the attached PDF: the competent person's, then the agency's seal.

Decree 30/2020 gives an electronic document the value of the original when its PDF carries the
digital signature of the competent person *and* the digital signature of the agency (the seal).
:func:`sign_pdf` adds them as two incremental PAdES signatures (B-B, or B-T when a time-stamp
server is configured), the person's first; both stay valid because the second revision only adds
a signature field. With ``visible=True`` each gets an appearance (:mod:`vbdt.trust.stamp`): the
person's signature box, and the seal box over the left third of it, as the decree's annex
describes, in Vietnamese (an embedded Unicode font) with the signing time in Vietnam time, and the
seal image when one is given.

:func:`verify_pdf` reports, for every signature, who signed and when, whether the signed bytes
are intact, whether the certificate chains to the configured anchors, and whether anything was
changed after it. The rules of an original-valid PDF:

- **Roles come from the certificate.** An *agency seal* certificate names an OrganId in its
  subject UID (how vbdt binds certificates to agencies, :mod:`vbdt.trust.keys`) or is pinned for
  an agency by the directory. A *person* certificate is any other: no agency can claim it (a
  Vietnamese personal certificate's ``UID=CCCD:...`` is not an OrganId). Document time-stamps
  (``/DocTimeStamp``) have the role ``timestamp``.
- **The seal belongs to the sender.** Given the expected ``agency``, every agency seal must pass
  :func:`vbdt.trust.keys.bind_certificate` for it, the same rule as the envelope signature.
- **Person, then seal, then nothing a reader sees.** A person's signature, an agency seal after it,
  and after the (last) seal only document time-stamps and validation data (DSS): pyHanko's
  difference analysis must rate everything after the seal ``LTA_UPDATES`` at most. A new
  signature, form field, annotation or appearance after the seal (a shadow attack) is refused;
  before the seal, form filling (the seal's own field) is allowed, since the seal vouches for it.
- **Bounded work.** ``Limits.max_pdf_revisions`` and ``Limits.max_pdf_signatures`` are checked on
  the cross-reference chain and a linear walk of the form tree before any signature is validated
  (pyHanko's validation costs grow faster than linearly with both), and the form tree must be a
  tree no deeper than ``Limits.max_depth`` (pyHanko walks shared sub-trees once per path).
- **Nothing escapes.** Whatever pyHanko raises on a hostile file (``zlib.error``,
  ``AssertionError``, ``NotImplementedError``...) becomes :class:`~vbdt.errors.PdfSignatureError`
  when the file cannot be read, or a problem on the signature concerned.

pyHanko does the PDF and CMS work; the key never leaves the :class:`~vbdt.trust.keys.SigningKey` it was
loaded into (pyHanko's own ``SimpleSigner`` would re-parse the private key for every signature).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
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
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from vbdt.directory.agencies import Directory
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.organid import OrganId
from vbdt.errors import CertificateRejected, InvalidOrganId, KeyFileError, PdfSignatureError, SignerMismatch
from vbdt.trust import stamp
from vbdt.trust.chain import check_signer
from vbdt.trust.keys import (
    SigningKey,
    bind_certificate,
    certificate_organ_id,
    fingerprint,
    load_certificates,
    revocation,
)

__all__ = ["PdfSignatureInfo", "PdfVerification", "is_signed_pdf", "sign_pdf", "verify_pdf"]

T = TypeVar("T")

PERSON = "person"
AGENCY = "agency"
TIMESTAMP = "timestamp"

# What pyHanko's difference analysis may say of the revisions after a signature, in our words.
_MODIFICATIONS = {"NONE": "none", "LTA_UPDATES": "validation data", "FORM_FILLING": "form filling",
                  "ANNOTATIONS": "annotations"}
# After the agency seal only document time-stamps and DSS (LTA_UPDATES) may follow.
_AFTER_SEAL = ("none", "validation data")
_BEFORE_SEAL = (*_AFTER_SEAL, "form filling")


class _KeySigner(signers.Signer):
    """A pyHanko signer over an already-loaded :class:`SigningKey` (or any key with ``sign``)."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        registry = SimpleCertificateStore.from_certs([_asn1(c) for c in key.chain])  # type: ignore[no-untyped-call]
        super().__init__(signing_cert=_asn1(key.certificate), cert_registry=registry, embed_roots=False)

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[digest_algorithm]
        private = self._key.private_key
        if dry_run:  # pyHanko sizes the signature first: answer without a key (token) operation
            if isinstance(private, rsa.RSAPrivateKey):
                return bytes(private.key_size // 8)
            # the longest DER ECDSA signature: SEQUENCE of two INTEGERs, each a byte longer than the key
            width = (private.key_size + 7) // 8 + 1
            return bytes(2 * (width + 2) + 3)
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
    except Exception:  # any failure of pyHanko on the bytes means: not a signed PDF we can read
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
    agency_name: str | None = None,
    seal_image: bytes | None = None,
) -> bytes:
    """Add the person's signature, then the agency's seal, as incremental PAdES signatures.

    Either may be ``None`` (for instance when the person signed in another system and only the
    seal is added here). ``timestamper`` is a TSA URL or a pyHanko ``TimeStamper``: with one the
    signatures are PAdES B-T, without B-B. Returns the signed PDF bytes; every failure (an
    unreadable PDF, a person key whose certificate is an agency seal) is a :class:`PdfSignatureError`.

    With ``visible=True`` the stamps (:mod:`vbdt.trust.stamp`) name the agency ``agency_name``
    (default: the common name of the seal's certificate, the agency's certified name) and the seal's
    box shows ``seal_image`` (PNG bytes, for instance the red round seal) when given.
    """
    if person is None and seal is None:
        raise PdfSignatureError("nothing to sign with: give the person's key, the agency's seal key, or both")
    if person is not None and _organ_id_of(person.certificate) is not None:
        # a verifier would see two seals and no person: refuse to produce it
        raise PdfSignatureError(f"the person's certificate {person.certificate.subject.rfc4514_string()} "
                                "names an agency (OrganId in its UID): it is a seal, not a person's certificate")
    stamper = HTTPTimeStamper(timestamper) if isinstance(timestamper, str) else timestamper
    agency = agency_name or (_common_name(seal.certificate) if seal is not None else None)
    data = pdf
    existing = _signature_count(data)
    if person is not None:
        style = stamp.person_style(stamp.person_text(_common_name(person.certificate), agency)) if visible else None
        data = _add_signature(data, person, f"Signature{existing + 1}_{PERSON}", stamper,
                              stamp.PERSON_BOX if visible else None, page, reason, location, style)
    if seal is not None:
        # The seal covers the left third of the person's signature (Decree 30/2020, annex I).
        style = stamp.seal_style(stamp.seal_text(agency or ""), seal_image) if visible else None
        data = _add_signature(data, seal, f"Signature{_signature_count(data) + 1}_{AGENCY}", stamper,
                              stamp.seal_box() if visible else None, page, reason, location, style)
    return data


def _common_name(cert: x509.Certificate) -> str:
    """The certificate's common name (the whole subject when it has none), for the stamps."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = names[0].value if names else cert.subject.rfc4514_string()
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _signature_count(data: bytes) -> int:
    try:
        return len(PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures)
    except Exception as exc:  # pyHanko raises anything on a hostile file (zlib.error, AssertionError...)
        raise PdfSignatureError(f"not a readable PDF: {_describe(exc)}") from None


def _add_signature(
    data: bytes,
    key: SigningKey,
    field_name: str,
    stamper: TimeStamper | None,
    box: tuple[int, int, int, int] | None,
    page: int,
    reason: str,
    location: str | None,
    style: Any,
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
            stamp_style=style if box else None,
            new_field_spec=fields.SigFieldSpec(field_name, box=box, on_page=on_page),
        )
        out = io.BytesIO()
        _run(pdf_signer.async_sign_pdf(writer, output=out))
        return out.getvalue()
    except Exception as exc:  # as above: whatever pyHanko raises on the input is "cannot sign"
        raise PdfSignatureError(f"cannot sign the PDF: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _organ_id_of(cert: x509.Certificate) -> str | None:
    """The OrganId a certificate's subject UID names, if it is one (``CCCD:...`` of a person is not)."""
    uid = certificate_organ_id(cert)
    if uid is None:
        return None
    try:
        return str(OrganId.lenient(uid))
    except InvalidOrganId:
        return None


@dataclass(frozen=True)
class PdfSignatureInfo:
    """One signature of a PDF, as the verifier saw it."""

    field_name: str
    """The PDF signature field."""
    role: str
    """``person``, ``agency`` (a seal: the certificate names or is pinned for an OrganId) or
    ``timestamp`` (a document time-stamp)."""
    signer: str
    """Certificate subject (RFC 4514)."""
    organ_id: str | None
    """The agency of a seal (from the UID or the directory's pins)."""
    signing_time: dt.datetime | None
    """The time the signer claims (signed attribute)."""
    timestamp: dt.datetime | None
    """The time a trusted time-stamp proves (PAdES B-T, or the document time-stamp itself), if any."""
    intact: bool
    """The signed bytes are unchanged."""
    trusted: bool
    """The certificate chains to a trust anchor, was valid, and may sign documents."""
    whole_file: bool
    """Nothing at all was appended after this signature."""
    modified_after: str
    """What later revisions changed: ``none``, ``validation data`` (document time-stamps, DSS),
    ``form filling`` (new signatures or field values), ``annotations`` or ``other``."""
    problems: list[str] = field(default_factory=list)
    """Why this signature does not count (empty when it does)."""

    @property
    def valid(self) -> bool:
        """Intact, trusted, and no problem with what it is or what came after it."""
        return self.intact and self.trusted and not self.problems


@dataclass(frozen=True)
class PdfVerification:
    """Every signature of a PDF and the verdict on the document as a whole."""

    signatures: list[PdfSignatureInfo]
    original_valid: bool
    """Every signature valid, a person's signature, after it the sender's seal, after the seal
    nothing but document time-stamps and validation data."""
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


@dataclass(frozen=True)
class _Expected:
    """What the verifier knows beforehand: anchors, CRLs, the sending agency and its directory."""

    roots: list[asn1_x509.Certificate]
    crls: list[x509.CertificateRevocationList]
    at: dt.datetime | None
    agency: str | None
    directory: Directory | None
    pins: dict[str, str]
    """Pinned certificate fingerprint → the agency that pins it."""

    def context(self) -> ValidationContext:
        der = [asn1_crl.CertificateList.load(c.public_bytes(serialization.Encoding.DER)) for c in self.crls]
        return ValidationContext(trust_roots=self.roots, allow_fetching=False, crls=der, moment=self.at,
                                 revocation_mode="hard-fail" if self.crls else "soft-fail")


def verify_pdf(
    data: bytes,
    *,
    trust: str | Path | Sequence[x509.Certificate],
    agency: str | None = None,
    directory: Directory | None = None,
    at: dt.datetime | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> PdfVerification:
    """Verify every signature of a PDF against the trust anchors (never the system store).

    ``agency`` is the OrganId the PDF comes from (the envelope's sender): every agency seal must
    be bound to it (:func:`~vbdt.trust.keys.bind_certificate`, with the ``directory``'s pins).
    Without it the seal's agency is reported (``organ_id``) but not checked. A file that cannot be
    read, or is over ``limits.max_pdf_revisions`` / ``max_pdf_signatures``, raises
    :class:`PdfSignatureError`; anything else is reported in the returned verdict.
    """
    anchors = load_certificates(trust) if isinstance(trust, str | Path) else list(trust)
    if not anchors:
        raise KeyFileError("no trust anchors given")
    embedded = _embedded_signatures(data, limits)
    pins = {p.lower().replace(":", ""): str(a.organ_id) for a in directory or () for p in a.cert_fingerprints}
    expected = _Expected([_asn1(c) for c in anchors], list(crls), at, agency, directory, pins)
    infos = [_run(_check(sig, expected)) for sig in embedded]
    judged = _after_the_seal(infos)
    return PdfVerification(judged, *_verdict(judged))


def _embedded_signatures(data: bytes, limits: Limits) -> list[EmbeddedPdfSignature]:
    """The signatures pyHanko will validate, after the cheap bounds on revisions and signature fields."""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        revisions = reader.xrefs.total_revisions
    except Exception as exc:  # pyHanko raises anything on a hostile file (zlib.error, AssertionError...)
        raise PdfSignatureError(f"not a readable PDF: {_describe(exc)}") from None
    if revisions > limits.max_pdf_revisions:
        raise PdfSignatureError(f"the PDF has {revisions} revisions, over Limits.max_pdf_revisions "
                                f"({limits.max_pdf_revisions}); refused before validating any signature")
    try:
        _count_signature_fields(reader, limits)
        return list(reader.embedded_signatures)
    except PdfSignatureError:
        raise
    except Exception as exc:
        raise PdfSignatureError(f"not a readable PDF: {_describe(exc)}") from None


def _count_signature_fields(reader: PdfFileReader, limits: Limits) -> int:
    """Count filled signature fields in one pass over the form tree; refuse what pyHanko would choke on.

    pyHanko walks shared sub-trees once per path (exponential on a DAG) and validates each
    signature against every later revision, so a tree that is not a tree, a deep tree or too
    many signatures are refused here, before any of that work.
    """
    form = _entry(reader.root, "/AcroForm")
    top = _entry(form, "/Fields")
    if not isinstance(top, generic.ArrayObject):
        return 0
    seen: set[generic.Reference] = set()
    stack: list[tuple[generic.PdfObject, object, int]] = [(top.raw_get(i), None, 1) for i in range(len(top))]
    count = 0
    while stack:
        ref, inherited_type, depth = stack.pop()
        if isinstance(ref, generic.IndirectObject):
            if ref.reference in seen:
                raise PdfSignatureError("the PDF's form fields are not a tree (a field is reached twice)")
            seen.add(ref.reference)
        node = ref.get_object()  # type: ignore[no-untyped-call]
        if not isinstance(node, generic.DictionaryObject):
            continue
        if depth > limits.max_depth:
            raise PdfSignatureError(f"the PDF's form fields nest deeper than Limits.max_depth ({limits.max_depth})")
        field_type = _entry(node, "/FT") or inherited_type
        if field_type == "/Sig" and _entry(node, "/V"):
            count += 1
            if count > limits.max_pdf_signatures:
                raise PdfSignatureError(f"the PDF has more than {limits.max_pdf_signatures} signatures, over "
                                        "Limits.max_pdf_signatures; refused before validating any signature")
        kids = _entry(node, "/Kids")
        if isinstance(kids, generic.ArrayObject):
            stack.extend((kids.raw_get(i), field_type, depth + 1) for i in range(len(kids)))
    return count


def _entry(node: object, key: str) -> object:
    """A dictionary entry, dereferenced (``dict.get`` on pyHanko's dictionaries would not be)."""
    if not isinstance(node, generic.DictionaryObject):
        return None
    try:
        return node[key]
    except KeyError:
        return None


async def _check(sig: EmbeddedPdfSignature, expected: _Expected) -> PdfSignatureInfo:
    """Validate one signature or document time-stamp; every failure is a problem, never an exception."""
    field_name = str(getattr(sig, "field_name", "?"))
    is_timestamp = False
    try:
        is_timestamp = sig.sig_object_type == "/DocTimeStamp"
        status: Any
        if is_timestamp:
            status = await async_validate_pdf_timestamp(sig, validation_context=expected.context())
        else:
            status = await async_validate_pdf_signature(sig, signer_validation_context=expected.context())
        cert = x509.load_der_x509_certificate(status.signing_cert.dump())
    except Exception as exc:  # whatever a hostile signature makes pyHanko raise: this one does not count
        return PdfSignatureInfo(field_name, TIMESTAMP if is_timestamp else PERSON, "?", None, None, None,
                                False, False, False, "other", [f"cannot validate: {_describe(exc)}"])
    role, organ_id, problems = _role(cert, is_timestamp, expected)
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
    revoked = revocation(cert, expected.crls)
    if revoked:
        trusted = False
        problems.append(revoked)
    level = status.modification_level
    modified = _MODIFICATIONS.get(level.name, "other") if level is not None else "other"
    whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    if not whole and modified in ("annotations", "other"):
        problems.append(f"the document was changed after this signature ({modified})")
    tst = status.timestamp if is_timestamp else status.timestamp_validity
    proven = tst if isinstance(tst, dt.datetime) else (tst.timestamp if tst is not None and tst.valid and tst.intact else None)
    return PdfSignatureInfo(
        field_name=field_name,
        role=role,
        signer=cert.subject.rfc4514_string(),
        organ_id=organ_id,
        signing_time=None if is_timestamp else status.signer_reported_dt,
        timestamp=proven,
        intact=bool(status.intact and status.valid),
        trusted=trusted,
        whole_file=whole,
        modified_after="none" if whole else modified,
        problems=problems,
    )


def _role(cert: x509.Certificate, is_timestamp: bool, expected: _Expected) -> tuple[str, str | None, list[str]]:
    """The signer's role, its agency, and what is wrong with the certificate for that role."""
    if is_timestamp:
        return TIMESTAMP, None, []
    problems: list[str] = []
    try:
        check_signer(cert)
    except CertificateRejected as exc:
        problems.append(str(exc))
    organ_id = expected.pins.get(fingerprint(cert)) or _organ_id_of(cert)
    if organ_id is None:
        return PERSON, None, problems
    if expected.agency is not None:
        try:
            bind_certificate(cert, expected.agency, expected.directory)
        except SignerMismatch as exc:
            problems.append(f"the seal is not the sending agency's: {exc}")
    return AGENCY, organ_id, problems


def _after_the_seal(infos: list[PdfSignatureInfo]) -> list[PdfSignatureInfo]:
    """Add the problems of position: after the last agency seal nothing a reader sees may change."""
    seals = [i for i, s in enumerate(infos) if s.role == AGENCY]
    if not seals:
        return infos
    last = seals[-1]
    judged = []
    for i, s in enumerate(infos):
        extra = []
        if i > last and s.role != TIMESTAMP:
            extra.append("a signature added after the agency seal (only document time-stamps may follow it)")
        allowed = _AFTER_SEAL if i >= last else _BEFORE_SEAL
        if s.modified_after not in allowed and s.modified_after not in ("annotations", "other"):
            where = "the agency seal" if i == last else "this signature, which follows the agency seal" if i > last else "this signature"
            extra.append(f"the document was changed after {where} ({s.modified_after}): only document "
                         "time-stamps and validation data may follow the seal")
        judged.append(dataclasses.replace(s, problems=[*s.problems, *extra]) if extra else s)
    return judged


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
