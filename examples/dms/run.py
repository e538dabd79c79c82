"""A district DMS on vbdt: a provincial directive registered, answered, relayed to the communes,
their reports collected, with the district's DMS dying mid-flow and starting again.

    python examples/dms/run.py                                   # the embedded exchange
    python examples/dms/run.py --amqp amqp://guest:guest@127.0.0.1:5672/   # RabbitMQ (operator URL): own vhost
    python examples/dms/run.py --json                            # the outcome as JSON on the last line

UBND Tỉnh Thái Bình sends a directive to a district (000.00.01.H54). The district's DMS
(:mod:`service`) registers it in its SQLite book (:mod:`register`), accepts it (03), assigns it
(04), puts it in processing (05) and relays it to its two communes, carrying the province's
signed PDF unchanged. Each commune registers the relay, answers 03…05, sends a report back and
completes (06). The district's DMS dies after registering the first report and before
acknowledging it; started again on the same book and ledger, it gets that report again (marked
redelivered, registered once), collects the second, and completes the directive (06): the
province's ledger shows 01, 03, 04, 05, 06. Exit status 0 when it does, 1 otherwise, 2 when the
exchange cannot be set up.

The setup (a TEST-ONLY PKI, a broker with one user per agency) comes from ``vbdt.testing``; in
production the keys are the agency's own and the broker is provisioned with ``vbdt broker provision``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from register import Register
from service import Crash, Dms, open_client

import vbdt
from vbdt.testing import TestExchange
from vbdt.trust.samplepdf import make_pdf

PROVINCE = "000.00.00.H54"  # UBND Tỉnh Thái Bình (pre-2025 shape: province → district → commune)
DISTRICT = "000.00.01.H54"
COMMUNES = ["000.01.01.H54", "000.02.01.H54"]
WITHIN = 90.0  # seconds for each phase; a slow CI broker takes a few


def directive(directory: vbdt.Directory) -> vbdt.Document:
    """The province's directive to the district, with its PDF (signed by the province when sent)."""
    today = datetime.now(vbdt.VIETNAM_TZ).date()  # the date in Vietnam, whatever the machine's zone
    return vbdt.Document(
        sender=directory.organization(PROVINCE),
        recipients=[directory.organization(DISTRICT)],
        code=vbdt.Code(number="05", notation="CT-UBND"),
        promulgation=vbdt.PromulgationInfo(place="Thái Bình", date=today),
        document_type=vbdt.DocumentType(type=1, type_name="Chỉ thị"),
        subject="Về việc tăng cường công tác phòng, chống thiên tai năm 2026",
        signer=vbdt.SignerInfo(competence="TM. ỦY BAN NHÂN DÂN", position="Chủ tịch", full_name="Nguyễn Văn A"),
        steering_type=vbdt.SteeringType.DIRECTIVE,
        due_date=today + timedelta(days=15),
        attachments=[vbdt.Attachment.from_bytes("05-CT-UBND.pdf", make_pdf(["UBND TINH THAI BINH", "So: 05/CT-UBND"]),
                                                content_id="cid:1")],
    )


async def until(check: Callable[[], bool], within: float = WITHIN) -> bool:
    """Poll ``check`` until it holds or ``within`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _rows(book: Register) -> list[dict[str, Any]]:
    return [{"number": e.number, "sender": e.sender, "document_id": e.document_id, "kind": e.kind, "state": e.state,
             "answers": e.answers, "sealed_by": e.sealed_by, "pdf_ok": e.pdf_ok, "relayed_as": e.relayed_as}
            for e in book.entries()]


async def scenario(exchange: TestExchange, folder: Path) -> dict[str, Any]:
    """The whole flow; what each side ended with."""
    books = {o: Register(folder / f"{o}.register.db") for o in [DISTRICT, *COMMUNES]}

    def client(organ_id: str) -> contextlib.AbstractAsyncContextManager[vbdt.AgencyClient]:
        return open_client(organ_id, url=exchange.url(organ_id), keys=exchange.keys, directory=exchange.directory,
                           ledger=folder / f"{organ_id}.ledger.db", register=books.get(organ_id))

    outcome: dict[str, Any] = {"crashed": False}
    finished = False
    async with contextlib.AsyncExitStack() as stack:
        province = await stack.enter_async_context(client(PROVINCE))
        communes = [Dms(await stack.enter_async_context(client(c)), books[c]) for c in COMMUNES]
        workers = [asyncio.create_task(d.run()) for d in communes]
        try:
            # 1. the district's DMS, told to die after registering the first report, before acknowledging it
            async with client(DISTRICT) as district_client:
                sent = await province.send(directive(exchange.directory))
                print(f"{PROVINCE} sent {sent.document_id} to {DISTRICT}")
                try:
                    await asyncio.wait_for(Dms(district_client, books[DISTRICT], crash_before_ack="report").run(), WITHIN)
                except Crash as exc:
                    outcome["crashed"] = True
                    print(f"crash: {exc}")
            # 2. started again on the same book and ledger
            async with client(DISTRICT) as district_client:
                district = Dms(district_client, books[DISTRICT])
                worker = asyncio.create_task(district.run())
                try:
                    def done() -> bool:
                        states = {d.state.value for d in province.status(sent.document_id)}
                        return states == {"completed"}

                    finished = await until(done)
                    relay_id = next((e.relayed_as for e in books[DISTRICT].entries() if e.relayed_as), None)
                    if relay_id is not None:  # the communes' last receipts may still be on their way
                        await until(lambda: {d.state.value for d in district_client.status(relay_id)} == {"completed"})
                    outcome["district"] = {
                        "register": _rows(books[DISTRICT]),
                        "relay": relay_id,
                        "relay_states": {d.recipient: d.state.value for d in district_client.status(relay_id or "")},
                        "redelivered": district.redelivered,
                        "refused": books[DISTRICT].refusals(),
                    }
                finally:
                    worker.cancel()
                    await asyncio.gather(worker, return_exceptions=True)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        outcome["finished"] = finished
        outcome["directive"] = sent.document_id
        outcome["province"] = {
            "states": {d.recipient: d.state.value for d in province.status(sent.document_id)},
            # every answer the province recorded, in code order: receipts are verified concurrently,
            # so an 04 may land after the 05 sent right behind it and be kept as history, not applied
            "history": sorted({e.event for e in province.history(sent.document_id, DISTRICT) if e.event != "published"}),
        }
        outcome["communes"] = {c: _rows(books[c]) for c in COMMUNES}
    for book in books.values():
        book.close()
    return outcome


def show(outcome: dict[str, Any]) -> None:
    """What a clerk would look at: the books and the province's view."""
    for organ_id, rows in [(DISTRICT, outcome["district"]["register"]), *outcome["communes"].items()]:
        print(f"book of {organ_id}:")
        for row in rows:
            print(f"  {row['number']:>3}  {row['kind']:<9} {row['state']:<8} from {row['sender']}  {row['document_id']}"
                  f"  seals: {row['sealed_by']}")
    print(f"relayed as {outcome['district']['relay']}: {outcome['district']['relay_states']}")
    print(f"handed again after the restart: {outcome['district']['redelivered']}")
    print(f"at the province: {outcome['province']['states']}, answers {' '.join(outcome['province']['history'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--amqp", metavar="URL", help="RabbitMQ operator URL: a fresh vhost is provisioned, then deleted")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON on the last line")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            exchange = TestExchange.rabbitmq(folder, args.amqp) if args.amqp else TestExchange.embedded(folder)
            try:
                outcome = asyncio.run(scenario(exchange, folder))
            finally:
                exchange.close()
        except vbdt.VbdtError as exc:  # a broker that cannot be reached, a wrong URL: one line, not a traceback
            print(f"dms: {exc}", file=sys.stderr)
            return 2
    show(outcome)
    if args.json:
        print(json.dumps(outcome, ensure_ascii=False, sort_keys=True))
    return 0 if outcome["finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
