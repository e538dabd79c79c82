"""Pre-flight checks of ``vbdt send``, ``vbdt sign``, ``vbdt pdf sign`` and ``vbdt new``: before
anything is signed or published, refuse what the receivers would refuse, or what would hide a fault.

Each check raises the library's error for what failed, so the command prints one line and exits
with the documented code (:mod:`vbdt.cli.exits`):

=============================================================  =====================  ==========
failure                                                        error                  exit code
=============================================================  =====================  ==========
the package does not validate (schema, rules, directory)       ValidationError        1
an already signed envelope does not verify (tampered, foreign)  TrustError             1
a certificate not valid now, or not bound to ``--as``           CertificateRejected,   1
                                                               SignerMismatch
a private key that is not the certificate's                    KeyFileError           2
a PDF whose signatures do not verify, or not original-valid    PdfSignatureError      1
an unsigned PDF that nothing here will sign                    PdfSignatureError      1 (``--force``)
=============================================================  =====================  ==========

``--force`` forces only the last one: a PDF without any signature is sent as it is (a scan; the
receivers' own PDF policy decides). Nothing else is forcible: a broken or foreign signature, a
key or certificate the receivers would refuse, or an invalid package are refused every time,
since forcing them would only publish something every receiver rejects (or launder a tampered
file by signing it again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vbdt.errors import PdfSignatureError, SignerMismatch, UsageError, ValidationError

if TYPE_CHECKING:  # imported where used: every ``vbdt`` command imports this module to build its help
    import datetime as dt
    from pathlib import Path

    from vbdt.directory.agencies import Directory
    from vbdt.edxml.limits import Limits
    from vbdt.edxml.model import Attachment, Document
    from vbdt.trust.keys import SigningKey

__all__ = ["FORCIBLE", "check_document", "check_envelope", "check_keys", "check_pdf_attachments",
           "check_pdf_signatures", "is_signed"]

FORCIBLE = "an unsigned PDF attachment that nothing here signs (sent as it is)"
"""What ``--force`` lets through, as the help texts say it."""


def is_signed(data: bytes, limits: Limits) -> bool:
    """Whether edXML bytes carry an XML signature (read hardened)."""
    from vbdt.edxml.xmlparse import DS_NS, parse_xml

    root = parse_xml(data, limits).getroot()
    return next(root.iter(f"{{{DS_NS}}}Signature"), None) is not None


def check_envelope(data: bytes, *, organ_id: str, trust: Path, directory: Directory | None, limits: Limits) -> None:
    """An envelope that is signed already must verify, as ``organ_id``'s, before it is signed again:
    signing it again would otherwise hide that it was changed after it was signed."""
    from vbdt.trust.xmldsig import verify

    if not is_signed(data, limits):
        return
    verified = verify(data, trust=trust, directory=directory, limits=limits)  # TrustError: tampered, untrusted
    if verified.agency != organ_id:
        raise SignerMismatch(f"the file is signed by {verified.agency}, not by {organ_id}: "
                             "an agency sends only what it signed itself")


def check_keys(organ_id: str, directory: Directory | None, key: SigningKey | None = None, *,
               person: SigningKey | None = None, seal: SigningKey | None = None,
               at: dt.datetime | None = None) -> None:
    """Every key matches its certificate and is valid now; the envelope key and the seal are bound to
    ``organ_id`` (subject UID or the directory's pins); the person's certificate names no agency."""
    from vbdt.directory.agencies import Directory
    from vbdt.exchange.client import check_signing_key
    from vbdt.trust.keys import certificate_organ_id

    if key is not None:
        _check(key, organ_id, directory, "agency", at)
    if seal is not None and seal is not key:
        _check(seal, organ_id, directory, "seal", at)
    if person is not None:
        check_signing_key(person, organ_id, directory or Directory([]), role="person", at=at)
        if certificate_organ_id(person.certificate) is not None:
            raise SignerMismatch(f"the person's certificate {person.certificate.subject.rfc4514_string()} names an "
                                 "agency (OrganId in its UID): it is a seal, not a person's certificate")


def _check(key: SigningKey, organ_id: str, directory: Directory | None, role: str, at: dt.datetime | None) -> None:
    from vbdt.directory.agencies import Directory
    from vbdt.exchange.client import check_signing_key
    from vbdt.trust.keys import bind_certificate

    check_signing_key(key, organ_id, directory or Directory([]), role=role, at=at)
    if role != "agency":  # check_signing_key binds the agency key only
        bind_certificate(key.certificate, organ_id, directory)


def check_document(document: Document, directory: Directory | None, limits: Limits) -> None:
    """The package validates (schema, rules, and every agency in the directory when one is given)."""
    from vbdt.edxml.validation import validate
    from vbdt.edxml.writer import write

    report = validate(write(document), directory=directory, limits=limits)
    if not report.valid:
        raise ValidationError(report.findings, source=str(document.document_id))


def check_pdf_signatures(data: bytes, name: str, *, trust: Path, agency: str | None, directory: Directory | None,
                         limits: Limits, complete: bool) -> None:
    """The signatures a PDF carries all verify; with ``complete``, it is original-valid (the person's
    signature, then ``agency``'s seal). A PDF without signatures passes when not ``complete``."""
    from vbdt.trust.pades import verify_pdf

    result = verify_pdf(data, trust=trust, agency=agency, directory=directory, limits=limits)
    if complete:
        result.require_original(name)
        return
    broken = [f"{s.field_name}: {', '.join(s.problems) or 'not intact or not trusted'}"
              for s in result.signatures if not s.valid]
    if broken:
        raise PdfSignatureError(f"{name}: a signature does not verify: {'; '.join(broken)}")


def check_pdf_attachments(attachments: Sequence[Attachment], *, organ_id: str, trust: Path,
                          directory: Directory | None, limits: Limits, will_sign: bool, force: bool) -> None:
    """Every PDF attachment is original-valid as ``organ_id``'s, or unsigned and about to be signed
    (``will_sign``: a person's key and a seal are at hand); an unsigned PDF nothing signs is refused
    unless ``force``."""
    from vbdt.trust.packaging import is_pdf
    from vbdt.trust.pades import is_signed_pdf

    for attachment in attachments:
        if not is_pdf(attachment):
            continue
        data = attachment.read()
        if is_signed_pdf(data):
            check_pdf_signatures(data, f"attachment {attachment.name}", trust=trust, agency=organ_id,
                                 directory=directory, limits=limits, complete=True)
        elif not data.startswith(b"%PDF-"):
            raise PdfSignatureError(f"attachment {attachment.name} is labelled a PDF but is not one")
        elif not will_sign and not force:
            raise PdfSignatureError(f"attachment {attachment.name} is not signed and no person's key and seal are "
                                    "configured to sign it (receivers require an original-valid PDF); sign it "
                                    "with `vbdt pdf sign`, configure the keys, or give --force to send it unsigned")


def require_trust(trust: str | None, why: str) -> Path:
    """The trust anchors file a check needs (UsageError naming the check when absent)."""
    from vbdt.cli.files import input_path

    if trust is None:
        raise UsageError(f"--trust CA.pem is required to {why}")
    return input_path(trust, what="trust anchors file")
