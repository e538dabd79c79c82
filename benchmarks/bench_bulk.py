"""Bulk directives over the local RabbitMQ: sender time, end-to-end receipts, broker cost per recipient.

    python benchmarks/bench_bulk.py [--sizes 100,1000] [--classic-sizes 3321,10000] [--e2e 50] [--broker-cost 200]

1. **Sender time** to hand one directive to N inboxes (``AgencyClient.bulk_send``: resolve, validate,
   sign once, journal, find missing inboxes, publish in BCC batches, every confirm received), in a
   process of its own per N so that its peak memory (VmHWM) is the sender's. Directories of real
   size: the 2025 country (3,321 communes, ``vietnam-provinces``) up to 3,321, the generated
   pre-2025 shape (10,599 communes) above. Target: 10,000 in under 2 s, under 500 MB.
2. **End to end**: N receivers (AgencyClients in this process, one connection each) verify the
   package, store it and send a signed 01; measured until the sender's ledger has every 01 applied
   (each receipt's signature verified). Divided by the raw cost of N RSA-2048 signatures + N
   verifications from ``openssl speed`` (the floor no implementation goes under).
3. **Broker cost** of one 1 MB directive to N inboxes: message bytes and memory the broker reports
   per queue (``rabbitmqctl list_queues``) and the node's total memory before and after.

Each part provisions a vhost of its own (``vbdt-bench-bulk-*``) and deletes it, users included.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from _inputs import HWM_FUNCTION, ROOT  # puts src/ on the path
from bench_sign_verify import openssl_speed

import vbdt
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
from vbdt.exchange.broker import definitions, deprovision
from vbdt.exchange.rabbitadmin import RabbitAdmin
from vbdt.trust.pki import TestPki
from vbdt.trust.samplepdf import make_pdf


def directory_for(n: int) -> vbdt.Directory:
    if n <= 3321:
        from vbdt.directory.national import national_directory

        return national_directory()
    from vbdt.directory.generated import pre2025_shape_directory

    return pre2025_shape_directory()


def plan(n: int) -> tuple[vbdt.Directory, str, list[str]]:
    """The directory, a sender (the first province) and the first ``n`` communes."""
    directory = directory_for(n)
    sender = str(directory.select("**:province")[0].organ_id)
    communes = [str(a.organ_id) for a in directory.select("**:commune")][:n]
    if len(communes) < n:
        raise SystemExit(f"the directory has only {len(communes)} communes")
    return directory, sender, communes


def directive(directory: vbdt.Directory, sender: str, number: str, pdf_bytes: int = 0) -> Document:
    lines = ["UY BAN NHAN DAN", f"So: {number}/CT-UBND", "CHI THI"]
    if pdf_bytes:  # a large scanned-like directive: incompressible lines up to the size asked
        lines += [os.urandom(40).hex() for _ in range(pdf_bytes // 81)]
    issued = date(2026, 11, 23)
    return Document(
        sender=directory.organization(sender), recipients=[], code=Code(number=number, notation="CT-UBND"),
        promulgation=PromulgationInfo(place="Hà Nội", date=issued),
        document_type=DocumentType(type=1, type_detail=3, type_name="Chỉ thị"),
        subject="Về việc tăng cường phòng, chống thiên tai", content="Triển khai ngay.",
        signer=SignerInfo(competence="TM. ỦY BAN NHÂN DÂN", position="Chủ tịch", full_name="Nguyễn Văn A"),
        due_date=issued + timedelta(days=7), other_info=OtherInfo(priority=Priority.URGENT, page_amount=1),
        steering_type=SteeringType.DIRECTIVE, trace=[TraceHeader(organ_id=sender, timestamp=datetime.now(VIETNAM_TZ))],
        business=Business(staff_info=StaffInfo(department="Văn phòng", staff="Văn thư", email="vanthu@example.gov.vn")),
        attachments=[Attachment.from_bytes(f"{number}-CT-UBND.pdf", make_pdf(lines), content_id="cid:1")],
    )


def provision_inboxes(vhost: str, sender: str, inboxes: list[str], passwords: dict[str, str],
                      queue_type: str = "quorum") -> dict[str, str]:
    """The vhost, every inbox, users only for ``passwords`` (one definitions import); their URLs.

    ``queue_type="classic"`` is a variant for the sender side alone: thousands of quorum queues
    (vbdt's topology: one Raft group each) take this shared 2-core broker minutes to start."""
    document = definitions([sender, *inboxes], passwords, vhost=vhost)
    if queue_type == "classic":
        for queue in document["queues"]:
            arguments = queue["arguments"]
            for quorum_only in ("x-delivery-limit", "x-dead-letter-strategy"):
                arguments.pop(quorum_only, None)
            arguments["x-queue-type"] = "classic"
    users = {u["name"] for u in document["users"]} | {"guest"}
    document["permissions"] = [p for p in document["permissions"] if p["user"] in users]  # inboxes without a user
    RabbitAdmin().import_definitions(document)
    return {o: f"amqp://{vhost}%2F{o}:{pw}@127.0.0.1:5672/{vhost}" for o, pw in passwords.items()}


SENDER_CHILD = HWM_FUNCTION + """
import asyncio, json, sys, time
sys.path.insert(0, {bench!r})
from bench_bulk import plan, directive, raw_bcc
from vbdt.exchange.routing import routing_key
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.ledger import SqliteLedger
from vbdt.trust.keys import SigningKey

n, url, folder, workdir = {n}, {url!r}, {folder!r}, {workdir!r}
directory, sender, communes = plan(n)
key = SigningKey.from_pem(f"{{folder}}/{{sender}}.key.pem", f"{{folder}}/{{sender}}.cert.pem")
person = SigningKey.from_pem(f"{{folder}}/signer.key.pem", f"{{folder}}/signer.cert.pem")
doc = directive(directory, sender, "05")

async def main():
    transport = await AmqpTransport.connect(url, declare=False, timeout=300)  # the broker may still start inboxes
    agency = AgencyClient(sender, transport=transport, ledger=SqliteLedger(f"{{workdir}}/sender.db"), key=key,
                          trust=f"{{folder}}/ca.pem", directory=directory, person=person, seal=key)
    await agency.open()
    before = hwm()
    marks = {{}}
    def event(e):
        marks.setdefault(e.kind, time.perf_counter())
    start = time.perf_counter()
    run = await agency.bulk_send(doc, to=communes, on_event=event)
    end = time.perf_counter()
    info = run.info()
    size = run.journal.documents(run.run_id)[0].size
    body = run.journal.body(run.run_id, run.document_ids()[0])
    await agency.close()
    raw = await raw_bcc(url, body, [routing_key(c) for c in communes])
    print(json.dumps({{"recipients": n, "sender_seconds": round(end - start, 3),
                      "plan_seconds": round(marks["planned"] - start, 3),
                      "publish_seconds": round(end - marks["planned"], 3),
                      "confirmed": info.counts["confirmed"], "pending": info.counts["pending"],
                      "package_bytes": size, "raw_bcc_publish_seconds": round(raw, 3),
                      "ratio_to_raw_bcc": round((end - start) / raw, 2),
                      "peak_rss_mb": round(hwm() / 2**20, 1), "rss_before_mb": round(before / 2**20, 1)}}))

asyncio.run(main())
"""


async def raw_bcc(url: str, body: bytes, keys: list[str]) -> float:
    """Baseline: the same bytes to the same inboxes with raw aio-pika, one publish per 3,000 keys in
    BCC, confirms awaited together: the broker's own cost of the fan-out, with no vbdt around it."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=300)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("vbdt.exchange", ensure=False)
        user = url.split("//", 1)[1].split(":", 1)[0].replace("%2F", "/")
        chunks = [keys[i:i + 3000] for i in range(0, len(keys), 3000)]
        start = time.perf_counter()
        await asyncio.gather(*(exchange.publish(aio_pika.Message(body, user_id=user, headers={"BCC": c[1:]},
                                                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                                c[0], timeout=600) for c in chunks))
        return time.perf_counter() - start
    finally:
        await connection.close()


def sender_time(n: int, queue_type: str) -> dict[str, Any]:
    directory, sender, communes = plan(n)
    vhost = f"vbdt-bench-bulk-{uuid.uuid4().hex[:6]}"
    pki = TestPki.create([(sender, directory.get(sender).name)])
    with tempfile.TemporaryDirectory() as work:
        pki.write(Path(work))
        try:
            start = time.perf_counter()
            urls = provision_inboxes(vhost, sender, communes, {sender: uuid.uuid4().hex}, queue_type)
            provisioned = time.perf_counter() - start
            script = SENDER_CHILD.format(n=n, url=urls[sender], folder=work, workdir=work, bench=str(Path(__file__).parent))
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1800,
                                 env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            if out.returncode:
                return {"recipients": n, "queue_type": queue_type, "error": out.stderr.strip().splitlines()[-1:]}
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            result["provision_seconds"] = round(provisioned, 2)
            result["queue_type"] = queue_type
            return result
        finally:
            deprovision(vhost)


async def end_to_end(n: int) -> dict[str, Any]:
    from vbdt.exchange.amqp import AmqpTransport
    from vbdt.exchange.client import AgencyClient
    from vbdt.exchange.ledger import SqliteLedger

    directory, sender, communes = plan(n)
    vhost = f"vbdt-bench-bulk-{uuid.uuid4().hex[:6]}"
    keygen = time.perf_counter()
    pki = TestPki.create([(o, directory.get(o).name) for o in [sender, *communes]])
    keygen = time.perf_counter() - keygen
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        pki.write(folder)
        clients: list[AgencyClient] = []
        try:
            urls = provision_inboxes(vhost, sender, communes, {o: uuid.uuid4().hex for o in [sender, *communes]})

            async def client(organ_id: str, ledger: str) -> AgencyClient:
                agency = AgencyClient(organ_id, transport=await AmqpTransport.connect(urls[organ_id], declare=False, timeout=300),
                                      ledger=SqliteLedger(ledger), key=pki.agencies[organ_id], trust=folder / "ca.pem",
                                      directory=directory, person=pki.signer if organ_id == sender else None,
                                      seal=pki.agencies[organ_id] if organ_id == sender else None)
                await agency.open()
                clients.append(agency)
                return agency

            agency = await client(sender, str(folder / "sender.db"))
            for organ_id in communes:
                (await client(organ_id, ":memory:")).serve()
            agency.serve()
            start = time.perf_counter()
            run = await agency.bulk_send(directive(directory, sender, "06"), to=communes)
            handed = time.perf_counter() - start
            await run.wait_arrived(timeout=3600)
            total = time.perf_counter() - start
            package = run.journal.documents(run.run_id)[0].size
        finally:
            for c in clients:
                await c.close()
            deprovision(vhost)
    speed = openssl_speed()
    floor = n * (speed["rsa2048_sign_ms"] + speed["rsa2048_verify_ms"]) / 1000 if speed else None
    return {"recipients": n, "sender_seconds": round(handed, 3), "all_receipts_verified_seconds": round(total, 2),
            "openssl_floor_seconds": None if floor is None else round(floor, 3),
            "ratio_to_openssl_floor": None if not floor else round(total / floor, 1), "keygen_seconds": round(keygen, 1),
            "package_bytes": package}


def _ctl_json(*args: str) -> Any:
    out = subprocess.run(["rabbitmqctl", *args, "--formatter", "json"], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout)


def _node_memory() -> int:
    status = _ctl_json("status")
    memory = status.get("memory", {})
    return int(memory.get("total", {}).get("erlang", 0)) if isinstance(memory.get("total"), dict) else int(memory.get("total", 0))


async def broker_cost(n: int, size: int = 1_000_000) -> dict[str, Any]:
    from vbdt.exchange.amqp import AmqpTransport
    from vbdt.exchange.client import AgencyClient
    from vbdt.exchange.ledger import SqliteLedger

    directory, sender, communes = plan(n)
    vhost = f"vbdt-bench-bulk-{uuid.uuid4().hex[:6]}"
    pki = TestPki.create([(sender, directory.get(sender).name)])
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        pki.write(folder)
        try:
            urls = provision_inboxes(vhost, sender, communes, {sender: uuid.uuid4().hex})
            await asyncio.sleep(2)
            memory_before = _node_memory()
            agency = AgencyClient(sender, transport=await AmqpTransport.connect(urls[sender], declare=False, timeout=300),
                                  ledger=SqliteLedger(folder / "sender.db"), key=pki.agencies[sender], trust=folder / "ca.pem",
                                  directory=directory, person=pki.signer, seal=pki.agencies[sender])
            await agency.open()
            start = time.perf_counter()
            run = await agency.bulk_send(directive(directory, sender, "07", pdf_bytes=size), to=communes)
            seconds = time.perf_counter() - start
            package = run.journal.documents(run.run_id)[0].size
            await agency.close()
            await asyncio.sleep(2)
            queues = [q for q in _ctl_json("list_queues", "-p", vhost, "name", "messages", "message_bytes", "memory")
                      if str(q["name"]).startswith("vbdt.inbox.") and q["name"] != f"vbdt.inbox.{sender}"]
            memory_after = _node_memory()
        finally:
            deprovision(vhost)
    def total(column: str) -> int:
        return sum(int(q.get(column) or 0) for q in queues)  # a queue still starting reports ''

    return {"recipients": n, "package_bytes": package, "sender_seconds": round(seconds, 2), "queues_reporting": len(queues),
            "messages": total("messages"), "stored_bytes_per_recipient": total("message_bytes") // max(1, len(queues)),
            "queue_memory_bytes_per_recipient": total("memory") // max(1, len(queues)),
            "node_memory_growth_bytes_per_recipient": (memory_after - memory_before) // n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="recipients, quorum inboxes (vbdt's topology)")
    parser.add_argument("--classic-sizes", default="3321,10000",
                        help="recipients, classic-queue inboxes: the sender side alone, where quorum inboxes are too many for the broker")
    parser.add_argument("--e2e", type=int, default=50, help="receivers for the end-to-end part (0: skip)")
    parser.add_argument("--broker-cost", type=int, default=200, help="inboxes for the 1 MB directive (0: skip)")
    args = parser.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    results["sender"] = []
    for queue_type, sizes in (("quorum", args.sizes), ("classic", args.classic_sizes)):
        for n in filter(None, sizes.split(",")):
            results["sender"].append(sender_time(int(n), queue_type))
            print(json.dumps(results["sender"][-1]), file=sys.stderr)  # a later part failing loses nothing
    parts = {"end_to_end": (args.e2e, end_to_end), "broker_cost": (args.broker_cost, broker_cost)}
    for name, (n, part) in parts.items():
        if n:
            try:
                results[name] = asyncio.run(part(n))
            except Exception as exc:  # reported in the JSON, the other parts stand
                results[name] = {"recipients": n, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(results[name]), file=sys.stderr)
    results["openssl_speed"] = openssl_speed()
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
