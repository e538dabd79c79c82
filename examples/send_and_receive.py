"""Embedding vbdt in a DMS: send a document, receive it, answer it, follow its statuses.

    python examples/send_and_receive.py                                    # the embedded exchange
    python examples/send_and_receive.py --amqp amqp://guest:guest@127.0.0.1:5672/   # RabbitMQ (operator URL)

UBND Tỉnh Cao Bằng sends an official letter to its two communes; one registers and handles it
(03, 04, 05, 06), the other returns it (02). The province's ledger shows where each stands.
Exit status 0 when both answers came back, 1 otherwise.

The setup (a TEST-ONLY PKI, a broker with one user per agency) comes from ``vbdt.testing``; in
production the keys are the agency's own and the broker is provisioned with ``vbdt broker provision``.
Everything after the setup is what a DMS writes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import vbdt
from vbdt.testing import TestExchange
from vbdt.trust.samplepdf import make_pdf

PROVINCE = "000.00.00.H14"  # UBND Tỉnh Cao Bằng
HANDLES, RETURNS = "000.00.01.H14", "000.00.02.H14"  # its two communes in the small directory


@contextlib.asynccontextmanager
async def agency(organ_id: str, url: str, keys: Path, directory: vbdt.Directory, ledger: Path) -> AsyncIterator[vbdt.AgencyClient]:
    """One agency's client: its key (and the person who signs), the trust anchor, its broker URL and ledger."""
    key = vbdt.SigningKey.from_pem(keys / f"{organ_id}.key.pem", keys / f"{organ_id}.cert.pem")
    person = vbdt.SigningKey.from_pem(keys / "signer.key.pem", keys / "signer.cert.pem")
    async with vbdt.AgencyClient(organ_id, transport=await vbdt.connect(url), ledger=vbdt.SqliteLedger(ledger), key=key,
                                 trust=keys / "ca.pem", directory=directory, person=person, seal=key) as client:
        yield client


def letter(directory: vbdt.Directory) -> vbdt.Document:
    """An official letter (công văn) from the province to its communes, with its PDF."""
    today = date.today()
    communes = [directory.organization(str(c.organ_id)) for c in directory.select(f"{PROVINCE}/**:commune")]
    return vbdt.Document(
        sender=directory.organization(PROVINCE),
        recipients=communes,
        code=vbdt.Code(number="118", notation="UBND-VP"),
        promulgation=vbdt.PromulgationInfo(place="Cao Bằng", date=today),
        document_type=vbdt.DocumentType(type=1, type_detail=1, type_name="Công văn"),
        subject="Về việc báo cáo kết quả chuyển đổi số quý IV",
        signer=vbdt.SignerInfo(competence="TL. CHỦ TỊCH", position="Chánh Văn phòng", full_name="Nguyễn Văn A"),
        due_date=today + timedelta(days=10),
        business=vbdt.Business(staff_info=vbdt.StaffInfo(department="Văn phòng UBND tỉnh", staff="Văn thư")),
        attachments=[vbdt.Attachment.from_bytes("118-UBND-VP.pdf", make_pdf(["UBND TINH CAO BANG", "So: 118/UBND-VP"]),
                                                content_id="cid:1")],
    )


async def answer(commune: vbdt.AgencyClient) -> None:
    """A commune's DMS: register each document, then answer as its clerk would."""
    async for item in commune.inbox():          # verified, stored, signed 01 already sent
        async with item:                        # acknowledged after our own commit
            print(f"  {commune.organ_id} received {item.document.code} from {item.sender}: {item.document.subject}")
            if commune.organ_id == RETURNS:
                await item.reject("Văn bản không thuộc thẩm quyền giải quyết của xã")
                continue
            await item.accept()                 # 03: in the incoming-document book
            await item.assign("Giao công chức văn phòng - thống kê")   # 04
            await item.processing()             # 05
            await item.complete("Đã gửi báo cáo")                     # 06


async def exchange_documents(exchange: TestExchange, folder: Path) -> bool:
    """Send, receive, answer; print the province's view. True when both communes answered."""
    def open_agency(organ_id: str) -> contextlib.AbstractAsyncContextManager[vbdt.AgencyClient]:
        return agency(organ_id, exchange.url(organ_id), exchange.keys, exchange.directory, folder / f"{organ_id}.db")

    async with open_agency(PROVINCE) as province, open_agency(HANDLES) as first, open_agency(RETURNS) as second:
        communes = [asyncio.create_task(answer(c)) for c in (first, second)]
        result = await province.send(letter(exchange.directory))   # validated, signed once, confirmed by the broker
        print(f"sent {result.document_id} to {', '.join(result.recipients)}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        final = {"completed", "rejected"}
        while loop.time() < deadline and {d.state.value for d in province.status(result.document_id)} != final:
            await asyncio.sleep(0.1)
        for task in communes:
            task.cancel()
        await asyncio.gather(*communes, return_exceptions=True)
        print("where it stands (the province's ledger):")
        for delivered in province.status(result.document_id):
            why = f" — {delivered.reason}" if delivered.reason else ""
            print(f"  {delivered.recipient}  {delivered.state.value:<10} {delivered.state.label}{why}")
        print("history at", HANDLES, ":", " ".join(e.event for e in province.history(result.document_id, HANDLES)))
        return {d.state.value for d in province.status(result.document_id)} == final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp", metavar="URL", help="RabbitMQ operator URL: a fresh vhost is provisioned, then deleted")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            exchange = TestExchange.rabbitmq(folder, args.amqp) if args.amqp else TestExchange.embedded(folder)
            try:
                done = asyncio.run(exchange_documents(exchange, folder))
            finally:
                exchange.close()
        except vbdt.VbdtError as exc:  # a broker that cannot be reached, a wrong URL: one line, not a traceback
            print(f"send_and_receive: {exc}", file=sys.stderr)
            return 2
    print("both answers came back" if done else "NOT every answer came back")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
