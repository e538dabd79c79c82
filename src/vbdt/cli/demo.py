"""``vbdt demo``: a province issues a directive to its communes, end to end.

UBND Tỉnh Cao Bằng (two-level shape since July 2025) builds a directive (chỉ thị) to every
commune in the example directory, attaches the signed-to-be PDF, writes the edXML package,
validates it strictly against the schema, the business rules and the directory, reads it back,
inspects it, and shows what validation says about a tampered copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import click

from vbdt.cli.files import output_dir
from vbdt.cli.options import check_amqp_url
from vbdt.directory.agencies import Directory
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
    StaffInfo,
    TraceHeader,
)
from vbdt.edxml.resources import example_directory_path
from vbdt.edxml.validation import read, validate
from vbdt.edxml.writer import write
from vbdt.testing.documents import make_document
from vbdt.trust.samplepdf import make_pdf

__all__ = ["COMMANDS", "build_directive", "compose", "demo_command", "run_demo", "run_exchange_demo"]

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
    name = directory.organization(sender).organ_name or sender
    return make_document(directory, sender, recipients, subject=subject, number=number, notation=notation,
                         type_name=type_name, issued=issued, due_in_days=due_in_days, type_detail=type_detail,
                         pdf_lines=[name.upper(), f"So: {number}/{notation}", type_name.upper(), subject])


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


@click.command("demo")
@click.option("--out", "out_dir", default=".vbdt-run/demo", show_default=True, help="Where to write the files.")
@click.option("--amqp", "amqp_url", envvar="VBDT_AMQP_URL", default=None,
              help="Run the exchange over this RabbitMQ (admin URL; rabbitmqctl provisions a vbdt-demo vhost). "
                   "Default: the embedded broker.")
@click.option("--quick", is_flag=True, help="Only the document walkthrough, no exchange.")
def demo_command(out_dir: str, amqp_url: str | None, quick: bool) -> None:
    """Build, sign, validate and exchange documents across the four levels, with receipts."""
    if amqp_url is not None:
        check_amqp_url(amqp_url)
    folder = output_dir(out_dir)
    run_demo(folder, echo=click.echo)
    if not quick:
        asyncio.run(run_exchange_demo(folder, amqp_url=amqp_url, echo=click.echo))


# ------------------------------------------------------------------------------------------------
# The exchange: documents down the four levels and a report back up, with receipts.

CENTRAL = "000.00.00.G22"
THAI_BINH = "000.00.00.H54"
THAI_BINH_CITY = "000.00.01.H54"


@dataclass
class _Plan:
    sender: str
    to: str
    number: str
    notation: str
    type_name: str
    subject: str


PLAN = [
    _Plan(CENTRAL, "**:province", "8123", "VPCP-KSTT", "Công văn", "Về việc triển khai gửi, nhận văn bản điện tử bốn cấp"),
    _Plan(THAI_BINH, f"{THAI_BINH}/*", "215", "KH-UBND", "Kế hoạch", "Kế hoạch chuyển đổi số năm 2027"),
    _Plan(THAI_BINH_CITY, f"{THAI_BINH_CITY}/*", "87", "TB-UBND", "Thông báo", "Thông báo lịch tiếp công dân tháng 12"),
    _Plan(PROVINCE, f"{PROVINCE}/**:commune", "05", "CT-UBND", "Chỉ thị", "Về việc tăng cường phòng, chống thiên tai"),
]
REPORT = _Plan("000.01.01.H54", THAI_BINH_CITY, "12", "BC-UBND", "Báo cáo", "Báo cáo kết quả triển khai kế hoạch")


def _answer_for(organ_id: str) -> list[str]:
    """How far each receiver takes a document: a deterministic spread over the receipt codes."""
    n = sum(ord(c) for c in organ_id) % 10
    if organ_id == "000.03.01.H54":
        return ["reject"]
    return [["accept"], ["accept", "assign"], ["accept", "assign", "processing"], ["accept", "assign", "processing", "complete"],
            []][n % 5]


async def run_exchange_demo(out_dir: Path, *, amqp_url: str | None = None, echo: Callable[[str], None] = print) -> dict[str, dict[str, str]]:
    """Send documents down the levels and a report up, over the embedded exchange or RabbitMQ.

    Returns {DocumentId: {recipient: state}} as the senders' ledgers record it.
    """
    from vbdt.exchange.client import Agency, InboxItem
    from vbdt.exchange.ledger import SqliteLedger
    from vbdt.exchange.transport import Transport
    from vbdt.trust.pki import TestPki

    directory = Directory.load(example_directory_path())
    issued = date.today()
    senders = [p.sender for p in PLAN] + [REPORT.sender]
    receivers = {str(a.organ_id) for p in PLAN for a in directory.select(p.to)} | {REPORT.to}
    ids = sorted(set(senders) | receivers)
    echo(f"7. Exchange over {'RabbitMQ at ' + _redact(amqp_url) if amqp_url else 'the embedded broker'}: "
         f"{len(ids)} agencies of the four levels, each with its own key, broker user, inbox and ledger")
    pki = TestPki.create([(o, directory.get(o).name) for o in ids], kind="ec")
    pki_dir = out_dir / "pki"
    pki.write(pki_dir)
    echo(f"     TEST PKI (ECDSA P-256) in {pki_dir}; trust anchor {pki_dir / 'ca.pem'}")

    connect: Callable[[str], Awaitable[Transport]]
    if amqp_url:
        from yarl import URL

        from vbdt.exchange.amqp import AmqpTransport
        from vbdt.exchange.broker import provision

        url = URL(amqp_url)
        urls = provision(ids, vhost="vbdt-demo", host=url.host or "127.0.0.1", port=url.port or 5672,
                         admin=url.user or "guest", reset=True).urls
        echo(f"     provisioned vhost vbdt-demo: {len(urls)} users, one quorum inbox each")

        async def connect(organ_id: str) -> Transport:
            return await AmqpTransport.connect(urls[organ_id], declare=False)
    else:
        from vbdt.exchange.memory import MemoryBroker

        broker = MemoryBroker()
        broker.provision(ids)  # the operator's step: agencies may not create queues

        async def connect(organ_id: str) -> Transport:
            return broker.connect(organ_id)

    ledgers = out_dir / "ledgers"
    if ledgers.exists():
        for old in ledgers.glob("*.db*"):
            old.unlink()
    agencies: dict[str, Agency] = {}
    for organ_id in ids:
        agencies[organ_id] = Agency(
            organ_id, transport=await connect(organ_id), ledger=SqliteLedger(ledgers / f"{organ_id}.db"),
            key=pki.agencies[organ_id], trust=pki_dir / "ca.pem", directory=directory,
            person=pki.signer, seal=pki.agencies[organ_id],
        )
        await agencies[organ_id].open()

    received: dict[str, int] = {}

    async def serve(agency: Agency) -> None:
        async for item in agency.inbox():
            received[agency.organ_id] = received.get(agency.organ_id, 0) + 1
            await _handle(item, agency.organ_id)

    async def _handle(item: InboxItem, organ_id: str) -> None:
        async with item:  # acknowledged when every answer went out
            for step in _answer_for(organ_id) if item.sender != REPORT.sender else ["accept", "complete"]:
                if step == "reject":
                    await item.reject("Văn bản không thuộc thẩm quyền giải quyết của xã")
                else:
                    await getattr(item, step)()

    tasks = [asyncio.create_task(serve(a)) for a in agencies.values()]
    sent: list[tuple[_Plan, str, int]] = []
    try:
        for plan in [*PLAN, REPORT]:
            targets = [str(a.organ_id) for a in directory.select(plan.to)]
            doc = compose(directory, plan.sender, targets, number=plan.number, notation=plan.notation,
                          type_name=plan.type_name, subject=plan.subject, issued=issued)
            result = await agencies[plan.sender].send(doc)
            sent.append((plan, result.document_id, len(result.recipients)))
            echo(f"     {directory.get(plan.sender).name} → {plan.to}: {plan.type_name} {doc.code} to "
                 f"{len(result.recipients)} agencies (signed once: PDF by person + seal, envelope by the agency)")
        expected = sum(n for _, _, n in sent)
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            settled = sum(1 for plan, doc_id, _ in sent for d in agencies[plan.sender].status(doc_id)
                          if d.state.value not in ("queued", "sent"))
            if settled >= expected and sum(received.values()) >= expected:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # let the last receipts land
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for agency in agencies.values():
            await agency.transport.close()
        if amqp_url:  # the demo's vhost and users go with it: a broker is left as it was found
            from vbdt.exchange.broker import deprovision

            deprovision("vbdt-demo")
            echo("     vhost vbdt-demo and its users deleted")

    table: dict[str, dict[str, str]] = {}
    echo("8. Delivery states, as each sender's ledger records them (receipts verified before they count):")
    for plan, doc_id, _ in sent:
        rows = agencies[plan.sender].status(doc_id)
        table[doc_id] = {d.recipient: d.state.value for d in rows}
        counts: dict[str, int] = {}
        for d in rows:
            counts[d.state.label] = counts.get(d.state.label, 0) + 1
        echo(f"   {doc_id}  ({plan.type_name}, {len(rows)} recipients)")
        for d in rows:
            reason = f" — {d.reason}" if d.reason else ""
            echo(f"     {d.recipient:<15} {directory.get(d.recipient).name[:38]:<38} {d.state.value:<11} {d.state.label}{reason}")
    for agency in agencies.values():
        agency.ledger.close()
    total = sum(len(v) for v in table.values())
    done = sum(1 for v in table.values() for s in v.values() if s not in ("queued", "sent"))
    echo(f"9. {total} deliveries, {done} confirmed by a signed receipt; ledgers in {ledgers}")
    return table


def _redact(url: str) -> str:
    from yarl import URL

    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


COMMANDS: list[click.Command] = [demo_command]
