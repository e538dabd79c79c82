"""Documents for tests: realistic, valid, each with its own number and a one-page PDF (unsigned).

::

    doc = make_document(directory, "000.00.00.H14", ["000.00.01.H14"], subject="Về việc thử nghiệm")
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, timedelta

from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import Priority
from vbdt.edxml.model import (
    Attachment,
    Business,
    Code,
    Document,
    DocumentType,
    OtherInfo,
    PromulgationInfo,
    SignerInfo,
    StaffInfo,
)
from vbdt.trust.samplepdf import make_pdf

__all__ = ["make_document"]

_numbers = itertools.count(1)  # one series per process: a DocumentId names one document


def make_document(directory: Directory, sender: str, recipients: Sequence[str], *, subject: str = "Về việc thử nghiệm trao đổi văn bản điện tử",
                  number: str | None = None, notation: str = "UBND-VP", type_name: str = "Công văn",
                  issued: date | None = None, due_in_days: int | None = 7, type_detail: int = 1,
                  pdf_lines: Sequence[str] | None = None) -> Document:
    """A document from ``sender`` to ``recipients`` (OrganIds of ``directory``), numbered in turn unless
    ``number`` is given, dated ``issued`` (today), due ``due_in_days`` later (``None``: no due date),
    with a one-page PDF showing ``pdf_lines`` (default: a test banner, the number and the type).
    ``recipients`` may be empty for a document whose recipients ``send(doc, to=[selectors])`` fills in
    (validation reports an empty To list otherwise: EDX103)."""
    issued = issued or date.today()
    code = Code(number=number or str(next(_numbers)), notation=notation)
    org = directory.organization(sender)
    pdf = make_pdf(list(pdf_lines) if pdf_lines is not None else
                   ["VAN BAN THU NGHIEM (TEST)", f"So: {code.number}/{code.notation}", type_name.encode("ascii", "replace").decode()])
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
        attachments=[Attachment.from_bytes(f"{code.number}-{notation}.pdf", pdf, content_id="cid:1")],
    )
