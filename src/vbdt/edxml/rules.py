"""Business rules beyond the schema: what a clerk would check before registering a document.

Each rule is a plain function ``(package, context) -> iterable of findings``; :data:`RULES` lists
them. Rules only see the model (and, for a parsed document, the manifest as it was written), so they
apply the same way to a package built in Python and to one read from bytes. Paths are written in
the form of :mod:`vbdt.edxml.paths`; the validator attaches source lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from vbdt.edxml import paths
from vbdt.edxml.attachment import Base64Content
from vbdt.edxml.codes import BusinessDocType, StatusCode
from vbdt.edxml.findings import Finding, Severity
from vbdt.edxml.model import VIETNAM_TZ, Code, Document, ManifestReference, Package, StatusMessage, document_id_for
from vbdt.edxml.organid import OrganId, nonstandard_kind
from vbdt.edxml.sniff import KNOWN_TYPES, sniff, zip_single_entry_name
from vbdt.errors import InvalidOrganId

__all__ = ["RULES", "RuleContext", "check_rules", "parse_document_id"]

E, W = Severity.ERROR, Severity.WARNING
_USUAL_TYPES = frozenset({1, 2})  # văn bản hành chính, văn bản quy phạm pháp luật
_DOCUMENT_ID = re.compile(r"(?P<organ>[^,]+),(?P<date>[^,]+),(?P<code>[^,]+)")


@dataclass
class RuleContext:
    """What the rules may consult besides the package."""

    directory: Container[str] | None = None
    """When given, every agency named must be in it (EDX102)."""
    today: date = field(default_factory=lambda: datetime.now(VIETNAM_TZ).date())
    """The date against which "in the future" is judged."""
    source_manifest: list[ManifestReference] | None = None
    """The manifest as written in the source, for a parsed document."""
    lenient: bool = False
    """Reading leniently: the real-world variants (EDX106, EDX107, EDX110, EDX203, EDX208, EDX307-308) are
    warnings instead of errors."""

    @property
    def variant(self) -> Severity:
        """The severity of a real-world variant: a warning when lenient, an error when strict."""
        return W if self.lenient else E


Rule = Callable[[Package, RuleContext], Iterable[Finding]]


def parse_document_id(value: str) -> tuple[str, str, str] | None:
    """Split a DocumentId into (OrganId, date text, number/notation), or None when not in that form."""
    match = _DOCUMENT_ID.fullmatch(value.strip())
    if match is None:
        return None
    return match["organ"], match["date"], match["code"]


_DATE_FORM = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})")


def _valid_date(text: str) -> str | None:
    form = _DATE_FORM.fullmatch(text)
    if form is not None:  # the written form, checked without strptime (a tenth of its cost)
        try:
            date(int(form[1]), int(form[2]), int(form[3]))
            return None
        except ValueError:
            pass  # strptime words the reason as it always has
    try:
        datetime.strptime(text, "%Y/%m/%d")
    except ValueError as exc:
        return str(exc)
    return None


def _organizations(package: Package) -> Iterator[tuple[str, OrganId]]:
    """Every OrganId in the package with its path."""
    m = paths.MESSAGE
    yield f"{m}/From/OrganId", package.sender.organ_id
    if isinstance(package, Document):
        n = len(package.recipients)
        for i, r in enumerate(package.recipients):
            yield f"{m}/{paths.indexed('To', i, n)}/OrganId", r.organ_id
        n = len(package.response_for)
        for i, rf in enumerate(package.response_for):
            yield f"{m}/{paths.indexed('ResponseFor', i, n)}/OrganId", rf.organ_id
        reps = package.business.replacements
        for i, rep in enumerate(reps):
            rep_path = f"{paths.TRACE}/Bussiness/ReplacementInfoList/{paths.indexed('ReplacementInfo', i, len(reps))}"
            for j, organ_id in enumerate(rep.organ_ids):
                yield f"{rep_path}/OrganIdList/{paths.indexed('OrganId', j, len(rep.organ_ids))}", organ_id
        info = package.business.document_info
        if info is not None:
            for i, receiver in enumerate(info.receivers):
                yield (
                    f"{paths.TRACE}/Bussiness/BussinessDocumentInfo/ReceiverList/"
                    f"{paths.indexed('Receiver', i, len(info.receivers))}/OrganId",
                    receiver.organ_id,
                )
    else:
        yield f"{m}/ResponseFor/OrganId", package.response_for.organ_id
    n = len(package.trace)
    for i, t in enumerate(package.trace):
        yield f"{paths.TRACE}/{paths.indexed('TraceHeader', i, n)}/OrganId", t.organ_id


def organ_ids_standard(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX101: every OrganId has the four-group form; EDX107: a known non-standard kind is a variant."""
    for path, organ_id in _organizations(package):
        if organ_id.is_standard:
            continue
        kind = nonstandard_kind(str(organ_id))
        if kind:
            yield Finding("EDX107", ctx.variant, f"OrganId {str(organ_id)!r} is {kind}", path)
        else:
            yield Finding("EDX101", E, f"OrganId {str(organ_id)!r}: {_why_not_standard(organ_id)}", path)


def organ_names(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX106: From and To name their agency (OrganName), so a clerk can read who they are."""
    m = paths.MESSAGE
    named = [(f"{m}/From", package.sender)]
    if isinstance(package, Document):
        n = len(package.recipients)
        named += [(f"{m}/{paths.indexed('To', i, n)}", r) for i, r in enumerate(package.recipients)]
    for path, organization in named:
        if not organization.organ_name:
            yield Finding("EDX106", ctx.variant, f"{str(organization.organ_id)!r} has no OrganName", f"{path}/OrganName")


def _why_not_standard(organ_id: OrganId) -> str:
    try:
        OrganId(str(organ_id))
    except InvalidOrganId as exc:
        return exc.reason
    return "not in the four-group form"  # pragma: no cover - only called for non-standard ids


def agencies_known(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX102: sender and recipients are in the directory (when one is given)."""
    if ctx.directory is None:
        return
    m = paths.MESSAGE
    named = [(f"{m}/From/OrganId", package.sender.organ_id, "sender")]
    if isinstance(package, Document):
        n = len(package.recipients)
        named += [
            (f"{m}/{paths.indexed('To', i, n)}/OrganId", r.organ_id, "recipient")
            for i, r in enumerate(package.recipients)
        ]
    for path, organ_id, role in named:
        if organ_id not in ctx.directory:
            yield Finding("EDX102", E, f"{role} {str(organ_id)!r} is not in the agency directory", path)


def recipients(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX103-105: at least one recipient, none twice, not the sender."""
    if not isinstance(package, Document):
        return
    m = paths.MESSAGE
    if not package.recipients:
        yield Finding("EDX103", E, "the document has no recipient (To); name at least one agency", m)
        return
    counts = Counter(r.organ_id for r in package.recipients)
    n = len(package.recipients)
    seen: set[str] = set()
    for i, r in enumerate(package.recipients):
        path = f"{m}/{paths.indexed('To', i, n)}/OrganId"
        if counts[r.organ_id] > 1 and r.organ_id in seen:
            yield Finding("EDX104", W, f"recipient {str(r.organ_id)!r} is named more than once", path)
        seen.add(r.organ_id)
        if r.organ_id == package.sender.organ_id:
            yield Finding("EDX105", W, "the sender is also a recipient", path)


def document_id(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX110-113, EDX201: DocumentId agrees with From, PromulgationDate and Code."""
    if not isinstance(package, Document) or package.document_id is None:
        return
    path = f"{paths.MESSAGE}/DocumentId"
    expected = document_id_for(package.sender.organ_id, package.promulgation.date, package.code)
    parts = parse_document_id(package.document_id)
    if parts is None:
        yield Finding(
            "EDX110", ctx.variant,
            f"DocumentId {package.document_id!r} is an opaque id, not sender,yyyy/MM/dd,number/notation "
            f"(expected {expected!r})",
            path,
        )  # fmt: skip
        return
    organ, day, code = parts
    if organ != package.sender.organ_id:
        yield Finding("EDX111", E, f"DocumentId names {organ!r} but From is {str(package.sender.organ_id)!r}", path)
    problem = _valid_date(day)
    if problem:
        yield Finding("EDX201", E, f"DocumentId date {day!r} is not a valid date ({problem})", path)
    elif day != f"{package.promulgation.date:%Y/%m/%d}":
        yield Finding(
            "EDX112", E,
            f"DocumentId date {day} differs from PromulgationDate {package.promulgation.date:%Y/%m/%d}",
            path,
        )  # fmt: skip
    if code != str(package.code):
        yield Finding("EDX113", E, f"DocumentId number/notation {code!r} differs from Code {str(package.code)!r}", path)


def referenced_document_ids(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX110, EDX201: DocumentIds that point at other documents are well formed with real dates."""
    refs: list[tuple[str, str]] = []
    if isinstance(package, Document):
        if package.business.document_id:
            refs.append((f"{paths.TRACE}/Bussiness/DocumentId", package.business.document_id))
        n = len(package.response_for)
        refs += [
            (f"{paths.MESSAGE}/{paths.indexed('ResponseFor', i, n)}/DocumentId", rf.document_id)
            for i, rf in enumerate(package.response_for)
            if rf.document_id
        ]
        reps = package.business.replacements
        refs += [
            (f"{paths.TRACE}/Bussiness/ReplacementInfoList/{paths.indexed('ReplacementInfo', i, len(reps))}/DocumentId", rep.document_id)
            for i, rep in enumerate(reps)
        ]  # fmt: skip
    elif package.response_for.document_id:
        refs.append((f"{paths.MESSAGE}/ResponseFor/DocumentId", package.response_for.document_id))
    for path, value in refs:
        parts = parse_document_id(value)
        if parts is None:
            yield Finding("EDX110", ctx.variant, f"DocumentId {value!r} is not sender,yyyy/MM/dd,number/notation", path)
            continue
        problem = _valid_date(parts[1])
        if problem:
            yield Finding("EDX201", E, f"DocumentId date {parts[1]!r} is not a valid date ({problem})", path)


def _code_number(code: Code, path: str) -> Iterator[Finding]:
    if not code.number.isdigit():
        yield Finding("EDX202", E, f"CodeNumber {code.number!r} is not a number (digits only, e.g. 07)", path)


def code_numbers(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX202: document numbers are digits."""
    if isinstance(package, Document):
        yield from _code_number(package.code, f"{paths.MESSAGE}/Code/CodeNumber")
        n = len(package.response_for)
        for i, rf in enumerate(package.response_for):
            if rf.code is not None:
                yield from _code_number(rf.code, f"{paths.MESSAGE}/{paths.indexed('ResponseFor', i, n)}/Code/CodeNumber")
    elif package.response_for.code is not None:
        yield from _code_number(package.response_for.code, f"{paths.MESSAGE}/ResponseFor/Code/CodeNumber")


def dates(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX203-205: deadlines after issue, no far-future dates, no negative counts."""
    if not isinstance(package, Document):
        if package.timestamp.date() > ctx.today + timedelta(days=1):
            yield Finding("EDX204", W, f"Timestamp {package.timestamp:%Y/%m/%d} is in the future", f"{paths.MESSAGE}/Timestamp")
        return
    issued = package.promulgation.date
    if package.due_date is not None and package.due_date < issued:
        yield Finding(
            "EDX203", ctx.variant,
            f"DueDate {package.due_date:%Y/%m/%d} is before PromulgationDate {issued:%Y/%m/%d}",
            f"{paths.MESSAGE}/DueDate",
        )  # fmt: skip
    if issued > ctx.today + timedelta(days=366):
        yield Finding(
            "EDX204", W, f"PromulgationDate {issued:%Y/%m/%d} is more than a year ahead",
            f"{paths.MESSAGE}/PromulgationInfo/PromulgationDate",
        )  # fmt: skip
    kind = package.document_type
    if kind.type not in _USUAL_TYPES or (kind.type_detail is not None and not 0 <= kind.type_detail <= 99):
        yield Finding(
            "EDX208", ctx.variant,
            f"DocumentType Type {kind.type}, TypeDetail {kind.type_detail} is outside the usual range "
            "(Type 1 or 2, TypeDetail 0-99)",
            f"{paths.MESSAGE}/DocumentType",
        )  # fmt: skip
    for name, value in (
        ("PromulgationAmount", package.other_info.promulgation_amount),
        ("PageAmount", package.other_info.page_amount),
    ):
        if value is not None and value < 0:
            yield Finding("EDX205", E, f"{name} is {value}; a count cannot be negative", f"{paths.MESSAGE}/OtherInfo/{name}")


def attachments(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX301-305: manifest matches attachments one to one, unique cid:, non-empty content."""
    if not isinstance(package, Document):
        return
    n = len(package.attachments)
    ids = Counter(a.content_id for a in package.attachments)
    first_named: dict[str, int] = {}
    for i, attachment in enumerate(package.attachments):
        path = f"{paths.ATTACHMENTS}/{paths.indexed('Attachment', i, n)}"
        # a DMS files attachments by name: a second file of the same name would overwrite the first
        first = first_named.setdefault(attachment.name, i)
        if first != i:
            yield Finding("EDX306", E, f"AttachmentName {attachment.name!r} is already the name of Attachment[{first + 1}]", f"{path}/AttachmentName")
        if ids[attachment.content_id] > 1:
            yield Finding("EDX302", E, f"ContentId {attachment.content_id!r} is used by {ids[attachment.content_id]} attachments", f"{path}/ContentId")
        if not attachment.content_id.startswith("cid:"):
            yield Finding("EDX305", W, f"ContentId {attachment.content_id!r} should start with 'cid:'", f"{path}/ContentId")
        if attachment.size == 0:
            yield Finding("EDX304", W, f"attachment {attachment.name!r} is empty", f"{path}/ContentTransferEncoded")
        # Base64 of parsed documents is checked by the schema (xs:base64Binary); this covers
        # packages whose model was built from base64 text by hand.
        if isinstance(attachment.content, Base64Content) and ctx.source_manifest is None:
            problem = attachment.content.problem()
            if problem:
                yield Finding("EDX303", E, f"attachment {attachment.name!r} is not valid base64: {problem}", f"{path}/ContentTransferEncoded")
    if ctx.source_manifest is None:
        return
    written = {(r.content_id, r.attachment_name) for r in ctx.source_manifest}
    actual = {(a.content_id, a.name) for a in package.attachments}
    manifest_path = paths.MANIFEST
    for content_id, name in sorted(written - actual):
        yield Finding("EDX301", E, f"the manifest lists {content_id} ({name}) but no attachment carries it", manifest_path)
    for content_id, name in sorted(actual - written):
        yield Finding("EDX301", E, f"attachment {content_id} ({name}) is not listed in the manifest", manifest_path)
    if len(ctx.source_manifest) != len(package.attachments) and written == actual:
        yield Finding(
            "EDX301", E,
            f"the manifest has {len(ctx.source_manifest)} references for {len(package.attachments)} attachments",
            manifest_path,
        )  # fmt: skip


def attachment_types(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX307-309: the ContentType says what the bytes are; a one-file ZIP is named."""
    if not isinstance(package, Document):
        return
    n = len(package.attachments)
    for i, attachment in enumerate(package.attachments):
        path = f"{paths.ATTACHMENTS}/{paths.indexed('Attachment', i, n)}"
        declared = attachment.content_type.strip().lower()
        real = sniff(attachment.content)
        if declared not in KNOWN_TYPES:
            detail = f"; the bytes are {real.mime}" if real else ""
            yield Finding("EDX308", ctx.variant, f"ContentType {attachment.content_type!r} of {attachment.name!r} is not a known MIME type{detail}", f"{path}/ContentType")
        elif real is not None and not real.matches(declared):
            yield Finding("EDX307", ctx.variant, f"{attachment.name!r} is labelled {attachment.content_type!r} but its bytes are {real.mime}", f"{path}/ContentType")
        if real is not None and real.mime == "application/zip":
            inner = zip_single_entry_name(attachment.content)
            if inner:
                yield Finding("EDX309", W, f"{attachment.name!r} is a ZIP holding the one file {inner!r}; Attachment.unzip() gives it", f"{path}/ContentTransferEncoded")


def status_message(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX401-402: a receipt identifies its document; a rejection says why."""
    if not isinstance(package, StatusMessage):
        return
    rf = package.response_for
    if not rf.document_id and (rf.code is None or rf.promulgation_date is None):
        yield Finding(
            "EDX401", E,
            "ResponseFor identifies no document: give DocumentId, or Code and PromulgationDate",
            f"{paths.MESSAGE}/ResponseFor",
        )  # fmt: skip
    if package.status_code is StatusCode.REJECTED and not (package.description or "").strip():
        yield Finding("EDX402", E, "a rejection (02) must give its reason in Description", f"{paths.MESSAGE}/Description")


def business(package: Package, ctx: RuleContext) -> Iterator[Finding]:
    """EDX501-503: revocations, updates and replacements name their document; the sender traced."""
    if not isinstance(package, Document):
        return
    b = package.business
    path = f"{paths.TRACE}/Bussiness"
    if b.doc_type in (BusinessDocType.REVOKE, BusinessDocType.UPDATE):
        if not b.document_id and not package.response_for:
            yield Finding(
                "EDX501", E,
                f"a {b.doc_type.label.lower()} must name the document concerned (Bussiness/DocumentId or ResponseFor)",
                path,
            )  # fmt: skip
    if b.doc_type is BusinessDocType.REPLACE and not b.replacements:
        yield Finding("EDX502", E, "a replacement must list the replaced documents (ReplacementInfoList)", path)
    if package.trace and package.sender.organ_id not in {t.organ_id for t in package.trace}:
        yield Finding("EDX503", W, f"no TraceHeader of the sender {str(package.sender.organ_id)!r}", paths.TRACE)


RULES: tuple[Rule, ...] = (
    organ_ids_standard,
    organ_names,
    agencies_known,
    recipients,
    document_id,
    referenced_document_ids,
    code_numbers,
    dates,
    attachments,
    attachment_types,
    status_message,
    business,
)
"""Every business rule, in the order findings are reported."""


def check_rules(package: Package, ctx: RuleContext | None = None) -> list[Finding]:
    """Run every rule on a package."""
    ctx = ctx or RuleContext()
    return [finding for rule in RULES for finding in rule(package, ctx)]
