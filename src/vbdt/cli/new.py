"""``vbdt new``: an edXML package from a PDF and the metadata a clerk registers, without Python.

The package is checked as ``vbdt send`` checks it (:mod:`vbdt.cli.preflight`) before it is written:
it validates against the directory, and with ``--sign`` the keys are checked, the PDF is signed by
the person and sealed by the agency (the visible stamps name ``--agency-name`` and show
``--seal-image``), then the envelope is signed. The output is ready for ``vbdt send``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from vbdt.cli.config import current_config, pick
from vbdt.cli.files import output_file, read_input, write_output
from vbdt.cli.options import check_organ_id, limits, load_directory
from vbdt.errors import UsageError

__all__ = ["COMMANDS", "PRIORITIES", "STEERING", "new_command"]

PRIORITIES = {"normal": "NORMAL", "urgent": "URGENT", "very-urgent": "VERY_URGENT", "immediate": "IMMEDIATE"}
"""``--priority`` → the standard's Priority (Thường, Khẩn, Thượng khẩn, Hỏa tốc)."""
STEERING = {"none": "NONE", "directive": "DIRECTIVE", "report": "REPORT"}
"""``--steering`` → SteeringType."""


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    """A YYYY-MM-DD date (a click usage error, exit 2, otherwise)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.command("new")
@click.argument("pdf", metavar="FILE.pdf")
@click.option("-o", "--output", required=True, metavar="OUT.edxml", help="The package to write.")
@click.option("--as", "organ_id", metavar="ORGANID", help="The sending agency (or `as` in vbdt.toml).")
@click.option("--to", "to", multiple=True, required=True, metavar="SELECTOR",
              help="Recipients: OrganIds or selectors (ID, ID/*, ID/**:commune, **:province); repeat.")
@click.option("--number", required=True, help="Số: the document's number, e.g. 05.")
@click.option("--notation", required=True, help="Ký hiệu, e.g. CT-UBND.")
@click.option("--type", "type_name", required=True, metavar="NAME", help="Loại văn bản, e.g. \"Công văn\", \"Chỉ thị\".")
@click.option("--type-detail", type=click.IntRange(0, 99), default=None, help="The standard's TypeDetail code.")
@click.option("--subject", required=True, help="Trích yếu: what the document is about.")
@click.option("--issued", callback=_date, default=None, metavar="YYYY-MM-DD", help="Ngày ban hành (default: today).")
@click.option("--place", default=None, help="Địa danh, where it was issued.")
@click.option("--signer-name", default=None, help="Who signed the paper original (full name).")
@click.option("--signer-position", default=None, help="The signer's position, e.g. \"Chủ tịch\".")
@click.option("--signer-competence", default=None, help="Thẩm quyền ký, e.g. \"TM. ỦY BAN NHÂN DÂN\".")
@click.option("--priority", type=click.Choice(list(PRIORITIES)), default="normal", show_default=True)
@click.option("--steering", type=click.Choice(list(STEERING)), default="none", show_default=True)
@click.option("--due", callback=_date, default=None, metavar="YYYY-MM-DD", help="Hạn xử lý: the due date.")
@click.option("--pages", type=click.IntRange(min=1), default=None, help="Number of pages.")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one).")
@click.option("--sign", "sign_it", is_flag=True, help="Sign the PDF (person + seal) and the envelope, with --keys.")
@click.option("--keys", "keys_dir", metavar="DIR", help="Folder of `vbdt pki init`: <OrganId>.key/.cert.pem, "
              "signer.key/.cert.pem, ca.pem.")
@click.option("--visible", is_flag=True, help="Draw the person's and the seal's stamps on the last page.")
@click.option("--agency-name", metavar="NAME", help="The agency on the stamps (default: the directory's name).")
@click.option("--seal-image", metavar="PNG", help="Image of the seal drawn in its box (implies --visible).")
def new_command(pdf: str, output: str, organ_id: str | None, to: Sequence[str], number: str, notation: str,
                type_name: str, type_detail: int | None, subject: str, issued: dt.date | None, place: str | None,
                signer_name: str | None, signer_position: str | None, signer_competence: str | None, priority: str,
                steering: str, due: dt.date | None, pages: int | None, directory_path: str | None, sign_it: bool,
                keys_dir: str | None, visible: bool, agency_name: str | None, seal_image: str | None) -> None:
    """Build an edXML package from FILE.pdf and its metadata, ready for `vbdt send`."""
    from vbdt.cli import preflight
    from vbdt.edxml.codes import Priority, SteeringType
    from vbdt.edxml.model import (
        VIETNAM_TZ,
        Attachment,
        Business,
        Code,
        Document,
        DocumentType,
        OtherInfo,
        PromulgationInfo,
        SignerInfo,
    )

    sender = pick(organ_id, current_config().organ_id)
    if not sender:
        raise UsageError("--as ORGANID is required (or `as` in vbdt.toml)")
    sender = check_organ_id(sender)
    if (visible or seal_image or agency_name) and not sign_it:
        raise UsageError("--visible, --agency-name and --seal-image go with --sign")
    target = output_file(output)
    bounds = limits()
    data = read_input(pdf, limit=bounds.max_bytes)
    if not data.startswith(b"%PDF-"):
        raise UsageError(f"{pdf}: not a PDF (it does not start with %PDF-)")
    directory = load_directory(directory_path)
    directory.get(sender)  # UnknownAgency with a clear message
    recipients = [directory.organization(str(a.organ_id)) for a in directory.select(*to) if str(a.organ_id) != sender]
    if not recipients:
        raise UsageError(f"--to {' '.join(to)}: no recipient other than the sender")
    issued = issued or dt.datetime.now(VIETNAM_TZ).date()
    if due is not None and due < issued:
        raise UsageError(f"--due {due} is before --issued {issued}")
    fields: dict[str, Any] = {
        "sender": directory.organization(sender),
        "recipients": recipients,
        "code": Code(number=number, notation=notation),
        "promulgation": PromulgationInfo(place=place, date=issued),
        "document_type": DocumentType(type=1, type_detail=type_detail, type_name=type_name),
        "subject": subject,
        "signer": SignerInfo(competence=signer_competence, position=signer_position, full_name=signer_name)
        if signer_name or signer_position or signer_competence else None,
        "due_date": due,
        "steering_type": SteeringType[STEERING[steering]] if steering != "none" else None,
        "other_info": OtherInfo(priority=Priority[PRIORITIES[priority]], promulgation_amount=len(recipients),
                                page_amount=pages),
        "business": Business(),
        "attachments": [Attachment.from_bytes(Path(pdf).name, data, content_id="cid:1")],
    }
    document = Document(**fields)
    preflight.check_document(document, directory, bounds)
    if not sign_it:
        from vbdt.edxml.writer import write

        write_output(target, write(document))
        click.echo(f"{document.document_id}: {len(recipients)} recipients -> {output} (unsigned: vbdt send signs it)")
        return
    body = _signed(document, sender, directory, keys_dir, visible or seal_image is not None, agency_name, seal_image)
    write_output(target, body)
    click.echo(f"{document.document_id}: {len(recipients)} recipients, PDF and envelope signed -> {output}")


def _signed(document: Any, sender: str, directory: Any, keys_dir: str | None, visible: bool, agency_name: str | None,
            seal_image: str | None) -> bytes:
    """The PDF signed by the person and sealed by the agency, then the envelope signed; checked first and after."""
    from vbdt.cli import preflight
    from vbdt.cli.exchange import agency_settings, signing_keys
    from vbdt.edxml.model import Attachment
    from vbdt.trust.pades import sign_pdf
    from vbdt.trust.stamp import MAX_IMAGE_BYTES
    from vbdt.trust.xmldsig import sign

    settings = agency_settings(sender, keys_dir, None, None, None, None, None)
    key, person, seal, trust = signing_keys(settings)
    if person is None or seal is None:
        raise UsageError("--sign needs the person's key (signer.key.pem/signer.cert.pem in --keys) and the seal")
    preflight.check_keys(sender, directory, key, person=person, seal=seal)
    image = read_input(seal_image, limit=MAX_IMAGE_BYTES) if seal_image else None
    (attachment,) = document.attachments
    name = agency_name or directory.get(sender).name
    pdf = sign_pdf(attachment.read(), person=person, seal=seal, visible=visible, agency_name=name, seal_image=image)
    preflight.check_pdf_signatures(pdf, attachment.name, trust=trust, agency=sender, directory=directory,
                                   limits=limits(), complete=True)
    signed = document.model_copy(update={"attachments": [
        Attachment.from_bytes(attachment.name, pdf, content_id=attachment.content_id)]})
    return sign(signed, key)


COMMANDS: list[click.Command] = [new_command]
