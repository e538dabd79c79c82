"""``vbdt demo``: a province issues a directive to its communes, end to end.

UBND Tỉnh Cao Bằng (two-level shape since July 2025) builds a directive (chỉ thị) to every
commune in the example directory, attaches the signed-to-be PDF, writes the edXML package,
validates it strictly against the schema, the business rules and the directory, reads it back,
inspects it, and shows what validation says about a tampered copy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from vbdt.codes import Priority, SteeringType
from vbdt.directory import Directory
from vbdt.model import (
    VIETNAM_TZ,
    Attachment,
    Business,
    Code,
    Document,
    DocumentType,
    OtherInfo,
    PromulgationInfo,
    SignerInfo,
    StaffInfo,
    TraceHeader,
)
from vbdt.resources import example_directory_path
from vbdt.samplepdf import make_pdf
from vbdt.validation import read, validate
from vbdt.writer import write

__all__ = ["build_directive", "compose", "run_demo"]

PROVINCE = "000.00.00.H14"


def build_directive(directory: Directory, *, issued: date, number: str = "05") -> Document:
    """A directive from UBND Tỉnh Cao Bằng to all its communes, with a one-page PDF."""
    communes = directory.select(f"{PROVINCE}/**:commune")
    code = Code(number=number, notation="CT-UBND")
    pdf = make_pdf(
        [
            "UY BAN NHAN DAN TINH CAO BANG",
            f"So: {code}",
            "CHI THI",
            "Ve viec tang cuong phong, chong thien tai mua mua bao nam 2026",
        ]
    )
    return Document(
        sender=directory.organization(PROVINCE),
        recipients=[directory.organization(c.organ_id) for c in communes],
        code=code,
        promulgation=PromulgationInfo(place="Cao Bằng", date=issued),
        document_type=DocumentType(type=1, type_detail=3, type_name="Chỉ thị"),
        subject="Về việc tăng cường phòng, chống thiên tai mùa mưa bão năm 2026",
        content="Chủ tịch UBND các xã, phường triển khai ngay các biện pháp phòng, chống thiên tai.",
        signer=SignerInfo(competence="TM. ỦY BAN NHÂN DÂN", position="Chủ tịch", full_name="Nguyễn Văn A"),
        due_date=issued + timedelta(days=7),
        other_info=OtherInfo(priority=Priority.URGENT, promulgation_amount=len(communes), page_amount=1),
        steering_type=SteeringType.DIRECTIVE,
        to_places=["Như trên", "Lưu: VT"],
        trace=[TraceHeader(organ_id=PROVINCE, timestamp=datetime.now(VIETNAM_TZ))],
        business=Business(
            staff_info=StaffInfo(department="Văn phòng UBND tỉnh", staff="Văn thư", email="vanthu@caobang.gov.vn")
        ),
        attachments=[Attachment.from_bytes(f"{number}-CT-UBND.pdf", pdf, content_id="cid:1")],
    )


def compose(
    directory: Directory,
    sender: str,
    recipients: list[str],
    *,
    number: str,
    notation: str,
    type_name: str,
    subject: str,
    issued: date,
    due_in_days: int | None = 7,
    type_detail: int = 1,
) -> Document:
    """A realistic document from ``sender`` to ``recipients`` with a one-page PDF (unsigned)."""
    code = Code(number=number, notation=notation)
    org = directory.organization(sender)
    pdf = make_pdf([(org.organ_name or sender).upper(), f"So: {code}", type_name.upper(), subject])
    return Document(
        sender=org,
        recipients=[directory.organization(r) for r in recipients],
        code=code,
        promulgation=PromulgationInfo(place=None, date=issued),
        document_type=DocumentType(type=1, type_detail=type_detail, type_name=type_name),
        subject=subject,
        signer=SignerInfo(competence="TM. ỦY BAN NHÂN DÂN", position="Chủ tịch", full_name="Nguyễn Văn A"),
        due_date=issued + timedelta(days=due_in_days) if due_in_days is not None else None,
        other_info=OtherInfo(priority=Priority.NORMAL, promulgation_amount=len(recipients), page_amount=1),
        business=Business(staff_info=StaffInfo(department="Văn thư", staff="Văn thư")),
        attachments=[Attachment.from_bytes(f"{number}-{notation}.pdf", pdf, content_id="cid:1")],
    )


def run_demo(out_dir: Path, *, echo: Callable[[str], None] = print) -> Document:
    """Run the walkthrough, writing files under ``out_dir``; returns the directive."""
    out_dir.mkdir(parents=True, exist_ok=True)
    directory = Directory.load(example_directory_path())
    echo(f"1. Directory: {len(directory)} agencies ({example_directory_path().name})")
    for level in ("central", "province", "district", "commune"):
        echo(f"     {level:<9} {len(directory.select(f'**:{level}'))}")

    doc = build_directive(directory, issued=date.today())
    echo(f"2. Built {doc.document_type.type_name} {doc.code} from {doc.sender.organ_name} "
         f"to {len(doc.recipients)} communes ({PROVINCE}/**:commune)")

    path = out_dir / "directive.edxml"
    data = write(doc)
    path.write_bytes(data)
    echo(f"3. Wrote {path} ({len(data):,} bytes, deterministic: {write(doc) == data})")

    report = validate(path, directory=directory)
    echo(f"4. Validated strictly (schema + rules + directory): {'valid' if report.valid else 'INVALID'}, "
         f"{len(report.errors)} errors, {len(report.warnings)} warnings")

    again = read(path, directory=directory)
    echo(f"5. Read back: same model as built: {again == doc}")
    echo(f"     subject   : {again.subject}")  # type: ignore[union-attr]
    echo(f"     attachment: {again.attachments[0].name} ({again.attachments[0].size:,} bytes)")  # type: ignore[union-attr]

    tampered = data.replace(b"<edXML:CodeNumber>05<", b"<edXML:CodeNumber>5a<", 1)
    bad_path = out_dir / "tampered.edxml"
    bad_path.write_bytes(tampered)
    bad = validate(bad_path, directory=directory)
    echo(f"6. A tampered copy ({bad_path}) is refused with {len(bad.errors)} findings, e.g.:")
    for finding in bad.errors[:2]:
        echo(f"     line {finding.line}: {finding.code}: {finding.message}")
    return doc
