"""Every check on one package or status message, as a typed report.

The checks reuse what vbdt already does, never a copy of it: :func:`~vbdt.edxml.validation.validate`
(XML safety, schema, business rules, real-world variants), the signature profile and
:func:`~vbdt.trust.xmldsig.verify` (chain, value, binding to ``From``), and
:func:`~vbdt.trust.pades.verify_pdf` (person, then agency seal). Each finding is assigned to one
check by its code (:data:`CHECK_OF_CODE`). The writing conventions other readers rely on
(docs/findings.md, "What the writer produces") are the validator's variant codes (EDX206/207
dates, EDX403 status codes, EDX902 order, EDX903/910/911 form) plus two checks of the bytes done
here: the XML declaration in UTF-8 and the ``edXML:`` prefix.

Profiles: ``strict`` reads as :func:`~vbdt.edxml.validation.read` does (every variant fails);
``lenient`` as :func:`~vbdt.edxml.validation.read_lenient` does (variants warn) and verifies SHA-1
signatures as legacy, with a warning. Outcomes: ``fail`` when a finding is an error, ``warn`` when
all are warnings, ``pass`` when there is none, ``skipped`` when the check could not run (its
``note`` says why: no ``--trust``, no PDF, the file is not XML).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from lxml import etree

from vbdt.conformance.advice import advice_for
from vbdt.directory.agencies import Directory
from vbdt.edxml import paths
from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.edxml.model import Document, Package
from vbdt.edxml.reader import parse_tree
from vbdt.edxml.validation import validate
from vbdt.edxml.xmlparse import DS_NS, EDXML_NS
from vbdt.errors import (
    CertificateRejected,
    SignatureInvalid,
    SignatureProfileError,
    SignerMismatch,
    VbdtError,
    XmlError,
)
from vbdt.trust.chain import TrustStore
from vbdt.trust.packaging import is_pdf
from vbdt.trust.pades import is_signed_pdf, verify_pdf
from vbdt.trust.xmldsig import check_profile, verify  # the profile verify() checks first, run alone without --trust

__all__ = [
    "CHECKS",
    "CHECK_OF_CODE",
    "SCHEMA",
    "CheckFinding",
    "CheckResult",
    "CheckSpec",
    "ConformanceReport",
    "FileReport",
    "Outcome",
    "Profile",
    "check_bytes",
    "check_of",
    "unreadable",
]

SCHEMA = "vbdt.check/1"
"""Version of the JSON shape of :meth:`ConformanceReport.to_dict` (docs/cli.md, ``vbdt check``)."""

Profile = Literal["strict", "lenient"]


class Outcome(StrEnum):
    """The verdict of one check."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class CheckSpec:
    """What a check is about: a stable id, its titles, why it matters and how to pass it."""

    id: str
    title: str
    title_vi: str
    why: str
    fix: str


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("xml", "Well-formed, safe edXML", "XML đúng cú pháp, an toàn",
              "Every receiver parses the bytes first; malformed or unsafe XML (a DOCTYPE, entities) is refused unread.",
              "Write UTF-8 XML with an XML serialiser, root edXML in the QCVN 102:2016 namespace, no DOCTYPE."),
    CheckSpec("schema", "The edXML schema (QCVN 102:2016 XSD)", "Lược đồ edXML (XSD QCVN 102:2016)",
              "Receivers validate the package against the XSD; any violation refuses the whole package.",
              "Validate your output against the XSD before sending (vbdt validate does)."),
    CheckSpec("rules.identifiers", "Agencies and DocumentId", "Mã định danh cơ quan và DocumentId",
              "Routing and the matching of receipts to documents rely on OrganIds and DocumentId.",
              "Use four-group OrganIds from the catalogue; build DocumentId from From, PromulgationDate and Code."),
    CheckSpec("rules.dates", "Dates and numbers", "Ngày tháng và số",
              "Registers store and compare dates and numbers; impossible values are refused.",
              "Write real dates, numeric CodeNumbers and non-negative counts."),
    CheckSpec("rules.attachments", "Attachments and manifest", "Tệp đính kèm và danh mục",
              "The receiver must be able to decode every file and know which belong to the document.",
              "One manifest reference per attachment, unique cid: ContentIds and names, correct MIME types."),
    CheckSpec("rules.status", "Status messages", "Thông điệp trạng thái",
              "A status message is filed under the document it answers; a rejection must say why.",
              "Fill ResponseFor completely; give a reason with StatusCode 02."),
    CheckSpec("rules.trace", "Trace and business information", "Vết xử lý và thông tin nghiệp vụ",
              "The trace dates the sending; Bussiness says whether this is a new document or a change.",
              "A TraceHeader of the sender, then Bussiness naming the concerned document for changes."),
    CheckSpec("signature.profile", "Signature follows the edXML XML-DSig profile", "Chữ ký số theo hồ sơ XML-DSig edXML",
              "Only a signature in the profile can be verified by every receiver; vbdt refuses any other.",
              "One enveloped ds:Signature, last in edXMLHeader, URI=\"\", exclusive C14N, SHA-256, the certificate chain "
              "in KeyInfo."),
    CheckSpec("signature.chain", "Signature verifies and its certificate is trusted",
              "Chữ ký hợp lệ, chứng thư số tin cậy",
              "A signature that does not verify, or a signer outside the trusted CAs, is refused.",
              "Sign the final bytes with the agency certificate issued by the trusted CA (needs --trust CA.pem)."),
    CheckSpec("signature.binding", "Certificate bound to From/OrganId", "Chứng thư số gắn với From/OrganId",
              "Only the agency named in From may sign for it; any other signer is an impersonation.",
              "Sign with the certificate whose subject UID is the From OrganId (or that the directory pins for it)."),
    CheckSpec("pdf.signatures", "PDF signatures: person, then agency seal", "Chữ ký số PDF: người có thẩm quyền, rồi con dấu",
              "Decree 30/2020: the PDF is the original only with the competent person's signature and the agency seal.",
              "PAdES-sign each PDF: the person first, then the sending agency's seal; change nothing after."),
    CheckSpec("writer.declaration", "UTF-8 with an XML declaration", "Mã hóa UTF-8, có khai báo XML",
              "Some receivers sniff the first bytes for the declaration and UTF-8.",
              "Start with <?xml version=\"1.0\" encoding=\"UTF-8\"?>, nothing before it."),
    CheckSpec("writer.namespace", "Every element as edXML:Name", "Mọi phần tử có tiền tố edXML:",
              "The .NET and Java SDK readers look elements up by their prefixed name.",
              "Declare xmlns:edXML once on the root and prefix every element with edXML:."),
    CheckSpec("writer.dates", "Dates yyyy/MM/dd, times with the hour", "Ngày dạng yyyy/MM/dd, thời điểm có giờ",
              "Readers parse yyyy/MM/dd; other forms are misread or refused.",
              "Dates yyyy/MM/dd, times yyyy/MM/dd HH:mm:ss in Vietnam time."),
    CheckSpec("writer.status-code", "Status codes with two digits", "Mã trạng thái hai chữ số",
              "Readers compare status codes as text: '3' is not '03'.", "Write 01-06, 13, 15, 16."),
    CheckSpec("writer.order", "The SDK element order", "Thứ tự phần tử theo SDK",
              "Readers that walk children by position misread other orders.",
              "Follow the order of vbdt/edxml/order.py (docs/findings.md, 'What the writer produces')."),
    CheckSpec("writer.form", "Header parts in the standard form", "Các phần tiêu đề đúng dạng chuẩn",
              "Strict readers refuse empty optional elements, missing header parts and one-text ResponseFor/Code.",
              "Leave out empty optional elements; always write DocumentType and PromulgationInfo; split Code."),
)
"""Every check, in report order."""

_SPECS = {spec.id: spec for spec in CHECKS}

CHECK_OF_CODE: dict[str, str] = {
    "EDX001": "schema",
    **{code: "rules.identifiers" for code in
       ("EDX101", "EDX102", "EDX103", "EDX104", "EDX105", "EDX106", "EDX107", "EDX108",
        "EDX110", "EDX111", "EDX112", "EDX113")},
    **{code: "rules.dates" for code in ("EDX201", "EDX202", "EDX203", "EDX204", "EDX205", "EDX208")},
    **{f"EDX30{n}": "rules.attachments" for n in range(1, 10)},
    "EDX401": "rules.status",
    "EDX402": "rules.status",
    **{code: "rules.trace" for code in ("EDX501", "EDX502", "EDX503", "EDX510", "EDX511", "EDX512")},
    **{code: "signature.profile" for code in ("EDX901", "EDX904", "EDX905", "EDX906", "EDX907", "EDX908")},
    "EDX206": "writer.dates",
    "EDX207": "writer.dates",
    "EDX403": "writer.status-code",
    "EDX902": "writer.order",
    "EDX903": "writer.form",
    "EDX909": "writer.namespace",
    "EDX910": "writer.form",
    "EDX911": "writer.form",
    "EDX912": "writer.declaration",
    "EDX913": "xml",
    # the checks' own codes
    "XML": "xml",
    "DECL": "writer.declaration",
    "PREFIX": "writer.namespace",
    "SIG-PROFILE": "signature.profile",
    "SIG-VALUE": "signature.chain",
    "SIG-CHAIN": "signature.chain",
    "SIG-WEAK": "signature.chain",
    "SIG-BINDING": "signature.binding",
    "PDF": "pdf.signatures",
}
"""Finding code → the check that reports it (every code of :data:`vbdt.edxml.findings.CODES` is here)."""

_BY_HUNDRED = {"0": "schema", "1": "rules.identifiers", "2": "rules.dates", "3": "rules.attachments",
               "4": "rules.status", "5": "rules.trace", "9": "writer.form"}


def check_of(code: str) -> str:
    """The check of a finding code (a future EDX code falls in its hundred's check)."""
    found = CHECK_OF_CODE.get(code)
    if found is not None:
        return found
    return _BY_HUNDRED.get(code[3:4], "schema") if code.startswith("EDX") else "xml"


@dataclass(frozen=True)
class CheckFinding:
    """One problem: where it is, what it is, why it matters, how to fix it."""

    code: str
    severity: Severity
    reason: str
    path: str = ""
    line: int | None = None
    why: str = ""
    fix: str = ""

    @classmethod
    def of(cls, code: str, severity: Severity, reason: str, path: str = "", line: int | None = None) -> CheckFinding:
        """A finding with the advice of its code."""
        why, fix = advice_for(code)
        return cls(code, severity, " ".join(reason.split()), path, line, why, fix)

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "severity": self.severity.value, "line": self.line, "path": self.path,
                "reason": self.reason, "why": self.why, "fix": self.fix}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one file."""

    id: str
    title: str
    title_vi: str
    outcome: Outcome
    findings: list[CheckFinding]
    why: str
    fix: str
    note: str = ""
    """Why the check was skipped, or what it established (e.g. how the certificate was bound)."""

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "title_vi": self.title_vi, "outcome": self.outcome.value,
                "note": self.note, "why": self.why, "fix": self.fix, "findings": [f.to_dict() for f in self.findings]}


@dataclass(frozen=True)
class FileReport:
    """Every check on one file, or why the file could not be read at all."""

    source: str
    kind: str | None
    """``document``, ``status`` or None (not readable as edXML)."""
    checks: list[CheckResult]
    error: str | None = None
    """Set when the file itself could not be read (missing, a folder, over the size limit): no check ran."""

    @property
    def conforms(self) -> bool:
        """Readable and no check failed (warnings and skipped checks allowed)."""
        return self.error is None and all(c.outcome is not Outcome.FAIL for c in self.checks)

    def check(self, check_id: str) -> CheckResult:
        """The result of the check ``check_id``."""
        return next(c for c in self.checks if c.id == check_id)

    def codes(self) -> set[str]:
        """Every finding code reported for this file."""
        return {f.code for c in self.checks for f in c.findings}

    def counts(self) -> dict[str, int]:
        """Checks per outcome."""
        return {o.value: sum(1 for c in self.checks if c.outcome is o) for o in Outcome}

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "kind": self.kind, "conforms": self.conforms, "error": self.error,
                "counts": self.counts(), "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class ConformanceReport:
    """The report over several files, as ``vbdt check`` prints, writes as JSON and renders as HTML."""

    files: list[FileReport]
    profile: Profile = "strict"
    trust: bool = False
    """Whether trust anchors were given (the chain, binding and PDF checks run only then)."""
    directory: bool = False
    """Whether an agency directory was given (EDX102 and certificate pins are checked only then)."""
    generated: dt.datetime | None = None

    @property
    def conforms(self) -> bool:
        return all(f.conforms for f in self.files)

    def totals(self) -> dict[str, int]:
        """Files, conforming files, unreadable files, and checks per outcome over all files."""
        out = {"files": len(self.files), "conforming": sum(f.conforms for f in self.files),
               "unreadable": sum(f.error is not None for f in self.files)}
        for outcome in Outcome:
            out[outcome.value] = sum(f.counts()[outcome.value] for f in self.files)
        return out

    def to_dict(self) -> dict[str, object]:
        """The documented JSON shape (``schema`` :data:`SCHEMA`)."""
        return {
            "schema": SCHEMA,
            "profile": self.profile,
            "trust": self.trust,
            "directory": self.directory,
            "generated": self.generated.isoformat() if self.generated else None,
            "conforms": self.conforms,
            "totals": self.totals(),
            "checks": [{"id": s.id, "title": s.title, "title_vi": s.title_vi} for s in CHECKS],
            "files": [f.to_dict() for f in self.files],
        }


def unreadable(source: str, reason: str) -> FileReport:
    """The report of a file that could not be read at all (no check ran)."""
    return FileReport(source, None, [], error=" ".join(reason.split()))


class _Collector:
    """Findings and notes per check while the checks run."""

    def __init__(self) -> None:
        self.findings: dict[str, list[CheckFinding]] = {spec.id: [] for spec in CHECKS}
        self.skipped: dict[str, str] = {}
        self.notes: dict[str, str] = {}

    def add(self, finding: CheckFinding, check_id: str | None = None) -> None:
        bucket = self.findings[check_id or check_of(finding.code)]
        if finding not in bucket:
            bucket.append(finding)

    def skip(self, check_id: str, why: str) -> None:
        self.skipped.setdefault(check_id, why)

    def results(self) -> list[CheckResult]:
        out = []
        for spec in CHECKS:
            found = self.findings[spec.id]
            if any(f.severity is Severity.ERROR for f in found):
                outcome = Outcome.FAIL
            elif found:
                outcome = Outcome.WARN
            elif spec.id in self.skipped:
                outcome = Outcome.SKIPPED
            else:
                outcome = Outcome.PASS
            note = self.skipped.get(spec.id, "") if outcome is Outcome.SKIPPED else self.notes.get(spec.id, "")
            out.append(CheckResult(spec.id, spec.title, spec.title_vi, outcome, found, spec.why, spec.fix, note))
        return out


_CODE_PREFIX = re.compile(r"^(EDX\d{3}): ")
_DECLARATION = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_BOM = b"\xef\xbb\xbf"


def check_bytes(
    data: bytes,
    *,
    source: str = "<bytes>",
    profile: Profile = "strict",
    trust: TrustStore | None = None,
    directory: Directory | None = None,
    limits: Limits = DEFAULT_LIMITS,
    at: dt.datetime | None = None,
    today: dt.date | None = None,
) -> FileReport:
    """Run every check on the bytes of one package or status message.

    ``trust`` enables the chain, binding and PDF signature checks; ``directory`` the lookup of
    agencies (EDX102) and certificate pins. ``at`` is the time certificates are judged at (now),
    ``today`` the date the rules compare dates with (today). Never raises on hostile bytes: what
    the parser refuses is the ``xml`` check's failure, and every other check is skipped.
    """
    lenient = profile == "lenient"
    mine = Severity.WARNING if lenient else Severity.ERROR
    out = _Collector()
    _declaration(data, mine, out)
    try:
        report = validate(data, lenient=lenient, directory=directory, limits=limits, today=today)
    except XmlError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        match = _CODE_PREFIX.match(reason)
        code = match.group(1) if match else "XML"
        out.add(CheckFinding.of(code, Severity.ERROR, reason, "", _line_of(exc)), "xml")
        for spec in CHECKS:
            if spec.id not in ("xml", "writer.declaration"):
                out.skip(spec.id, "not readable as edXML (see the xml check)")
        return FileReport(source, None, out.results())
    for finding in report.findings:
        out.add(_converted(finding))
    if directory is None:
        out.notes["rules.identifiers"] = "agencies not looked up in a directory (give --directory for EDX102)"
    package = report.package
    kind = None if package is None else "document" if isinstance(package, Document) else "status"
    tree, _ = parse_tree(data, limits, lenient=True)  # parsed as validate did; its findings are already in
    root = tree.getroot()
    _namespace(root, mine, out)
    _signature(data, root, out, lenient=lenient, trust=trust, directory=directory, limits=limits, at=at)
    _pdfs(package, root, out, trust=trust, directory=directory, limits=limits, at=at)
    return FileReport(source, kind, out.results())


def _line_of(exc: BaseException) -> int | None:
    match = re.search(r"\bline (\d+)", str(exc))
    return int(match.group(1)) if match else None


def _converted(finding: Finding) -> CheckFinding:
    return CheckFinding.of(finding.code, finding.severity, finding.message, finding.path, finding.line)


def _declaration(data: bytes, severity: Severity, out: _Collector) -> None:
    """UTF-8 with an XML declaration first (a BOM is allowed; bytes before it are EDX912's)."""
    head = data[:1024]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        out.add(CheckFinding.of("DECL", severity, "the file is UTF-16 (byte-order mark); edXML is written in UTF-8",
                                "", 1))
        return
    body = head.removeprefix(_BOM)
    if not body.startswith(b"<?xml"):
        if b"<?xml" not in head:
            out.add(CheckFinding.of("DECL", severity, "no XML declaration at the start of the file", "", 1))
        return  # a declaration later is EDX912, reported by the validator
    match = _DECLARATION.match(body)
    if match is not None and match.group(1).decode("ascii").upper().replace("_", "-") not in ("UTF-8", "UTF8"):
        out.add(CheckFinding.of("DECL", severity, f"the declaration names encoding {match.group(1).decode('ascii')!r}; "
                                "write UTF-8", "", 1))


def _namespace(root: etree._Element, severity: Severity, out: _Collector) -> None:
    """Every edXML element written with the ``edXML:`` prefix, declared on the root."""
    if root.nsmap.get("edXML") != EDXML_NS:
        out.add(CheckFinding.of("PREFIX", severity, "the root does not declare xmlns:edXML=\"" + EDXML_NS + "\"",
                                paths.element_path(root), root.sourceline))
    others = [e for e in root.iter(f"{{{EDXML_NS}}}*") if e.prefix != "edXML"]
    if others:
        first = others[0]
        written = f"{first.prefix}:" if first.prefix else "no prefix (the default namespace)"
        more = f", and {len(others) - 1} more elements" if len(others) > 1 else ""
        out.add(CheckFinding.of(
            "PREFIX", severity,
            f"{etree.QName(first).localname} is written with {written}, not edXML:{more}",
            paths.element_path(first), first.sourceline,
        ))  # fmt: skip


def _signature_place(root: etree._Element) -> tuple[str, int | None]:
    found = root.find(f".//{{{DS_NS}}}Signature")
    if found is None:
        found = root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader")
    if found is None:
        return "", None
    return paths.element_path(found), found.sourceline


def _signature(data: bytes, root: etree._Element, out: _Collector, *, lenient: bool, trust: TrustStore | None,
               directory: Directory | None, limits: Limits, at: dt.datetime | None) -> None:
    """The profile on the tree as sent; with trust anchors, the value, the chain and the binding."""
    path, line = _signature_place(root)
    try:
        check_profile(root, legacy_sha1=lenient)
    except SignatureProfileError as exc:
        out.add(CheckFinding.of("SIG-PROFILE", Severity.ERROR, str(exc), path, line))
    if trust is None:
        out.skip("signature.chain", "needs --trust CA.pem")
        out.skip("signature.binding", "needs --trust CA.pem")
        return
    try:
        verified = verify(data, trust=trust, directory=directory, legacy_sha1=lenient, at=at, limits=limits)
    except SignatureProfileError as exc:
        out.add(CheckFinding.of("SIG-PROFILE", Severity.ERROR, str(exc), path, line))
        out.skip("signature.chain", "the signature is not in the profile (see signature.profile)")
        out.skip("signature.binding", "the signature is not in the profile (see signature.profile)")
        return
    except SignatureInvalid as exc:
        out.add(CheckFinding.of("SIG-VALUE", Severity.ERROR, str(exc), path, line))
        out.skip("signature.binding", "the signature did not verify (see signature.chain)")
        return
    except SignerMismatch as exc:
        out.add(CheckFinding.of("SIG-BINDING", Severity.ERROR, str(exc), path, line))
        return
    except (CertificateRejected, XmlError, VbdtError) as exc:
        out.add(CheckFinding.of("SIG-CHAIN", Severity.ERROR, str(exc), path, line))
        out.skip("signature.binding", "the signature did not verify (see signature.chain)")
        return
    for warning in verified.warnings:
        out.add(CheckFinding.of("SIG-WEAK", Severity.WARNING, warning, path, line))
    out.notes["signature.chain"] = f"signed by {verified.signer}; chain: {' <- '.join(verified.chain)}"
    out.notes["signature.binding"] = f"bound to {verified.agency} by {verified.binding}"


def _attachment_places(root: etree._Element) -> dict[str, tuple[str, int | None]]:
    places: dict[str, tuple[str, int | None]] = {}
    for element in root.iterfind(f"{{{EDXML_NS}}}AttachmentEncoded/{{{EDXML_NS}}}Attachment"):
        name = element.findtext(f"{{{EDXML_NS}}}AttachmentName") or ""
        places.setdefault(name.strip(), (paths.element_path(element), element.sourceline))
    return places


def _pdfs(package: Package | None, root: etree._Element, out: _Collector, *, trust: TrustStore | None,
          directory: Directory | None, limits: Limits, at: dt.datetime | None) -> None:
    """Every PDF attachment: signed by the competent person, then sealed by the sender."""
    if package is None:
        out.skip("pdf.signatures", "no package could be built")
        return
    if not isinstance(package, Document):
        out.skip("pdf.signatures", "a status message has no attachments")
        return
    places = _attachment_places(root)
    checked: list[str] = []
    unverified: list[str] = []
    seen = 0
    for attachment in package.attachments:
        try:
            if not is_pdf(attachment):
                continue
            content = attachment.read()
        except VbdtError:
            continue  # undecodable: rules.attachments says why
        seen += 1
        path, line = places.get(attachment.name.strip(), ("", None))
        if trust is None:
            if is_signed_pdf(content):
                unverified.append(attachment.name)
            else:
                out.add(CheckFinding.of("PDF", Severity.ERROR, f"{attachment.name}: the PDF is not signed", path, line))
            continue
        try:
            verdict = verify_pdf(content, trust=trust.anchors, agency=str(package.sender.organ_id),
                                 directory=directory, at=at, crls=trust.crls, limits=limits)
        except VbdtError as exc:
            out.add(CheckFinding.of("PDF", Severity.ERROR, f"{attachment.name}: {exc}", path, line))
            continue
        if verdict.original_valid:
            roles = ", ".join(f"{s.role} {s.signer}" for s in verdict.signatures)
            checked.append(f"{attachment.name} ({roles})")
        else:
            out.add(CheckFinding.of("PDF", Severity.ERROR,
                                    f"{attachment.name} is not original-valid: {'; '.join(verdict.reasons)}", path, line))
    if checked:
        out.notes["pdf.signatures"] = "original-valid: " + "; ".join(checked)
    if unverified:
        out.skip("pdf.signatures", f"signed, not verified (needs --trust CA.pem): {', '.join(unverified)}")
    elif not seen:
        out.skip("pdf.signatures", "no PDF attachment")

