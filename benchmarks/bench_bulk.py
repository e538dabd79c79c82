"""Bulk directives over RabbitMQ: sender time (handed and confirmed), end-to-end receipts, broker cost per recipient.

    python benchmarks/bench_bulk.py [--sizes 100,1000] [--classic-sizes 3321,10000] [--e2e 50] [--broker-cost 1000]
                                    [--own-node] [--profile]

1. **Sender time** to hand one directive to N inboxes (``AgencyClient.bulk_send``: resolve, validate,
   sign once, journal, ledger, find missing inboxes, publish in BCC batches), in a process of its own
   per N (its peak memory, VmHWM, is the sender's), reported as two figures: ``handed_seconds``, until
   the last frame carrying the package was written to the socket (every copy is the broker's to
   route), and ``confirmed_seconds``, until every confirm came back and was journaled (the broker's
   fan-out to N inboxes, then fsync, is most of it). ``plan_seconds`` (resolve, validate, sign,
   journal) and ``publishing_seconds`` (then the inbox check and the ledger) split the first.
   Baseline in the same run: raw aio-pika publishing the same bytes to the same N inboxes, freshly
   provisioned in a vhost of their own (one publish per 3,000 keys in BCC, confirms awaited together),
   with the same two figures. Directories of real size: the 2025 country (3,321 communes,
   ``vietnam-provinces``) up to 3,321, the generated pre-2025 shape (10,599 communes) above. Target:
   10,000 in under 2 s. ``--profile`` attaches py-spy to the sender during ``bulk_send`` (it slows it):
   its busiest functions are in the JSON.
2. **End to end**: N receivers (AgencyClients in this process, one connection each) verify the
   package, store it and send a signed 01; measured until the sender's ledger has every 01 applied
   (each receipt's signature verified). Divided by the raw cost of N RSA-2048 signatures + N
   verifications from ``openssl speed`` (the floor no implementation goes under).
3. **Broker cost** of one 1 MB directive to N inboxes: messages and bytes the broker keeps for them
   (``rabbitmqctl list_queues messages_persistent message_bytes_persistent``), its memory, and with
   ``--own-node`` the growth of the node's data directory on disk.

``--own-node`` runs everything on a RabbitMQ node of the benchmark's own (own data directory, a
port of its own, stopped at the end) instead of the shared one at 127.0.0.1:5672: the figures do
not depend on what else the shared broker carries, and the shared broker is not loaded by 10,000
inboxes. Each part provisions a vhost of its own (``vbdt-bench-bulk-*``) and deletes it, users
included. Prints one JSON object.
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
from dataclasses import dataclass, field
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

CLASSIC_WHY = ("inboxes are quorum queues in vbdt's topology (one Raft group each); at 3,321 and more they are "
               "classic queues here, for the sender side alone: importing 2,574 quorum inboxes into the shared "
               "2-core broker did not finish within rabbitmqctl's 300 s while it carried the other test suites")


@dataclass
class Target:
    """The broker the benchmark runs on: the shared one, or a node of its own (``--own-node``)."""

    port: int = 5672
    admin: RabbitAdmin = field(default_factory=RabbitAdmin)
    data_dir: Path | None = None
    """The node's data directory (its own node only): measured on disk by the broker-cost part."""

    def ctl(self, *args: str) -> Any:
        """rabbitmqctl on the target node, its JSON output."""
        ctl = self.admin.ctl or "rabbitmqctl"
        node = ["-n", self.admin.node] if self.admin.node else []
        out = subprocess.run([ctl, *node, *args, "--formatter", "json"], capture_output=True, text=True, timeout=300,
                             check=True, env={**os.environ, **self.admin.env})
        return json.loads(out.stdout)


TARGET = Target()


def own_node(base: Path) -> Any:
    """Start a RabbitMQ node of the benchmark's own (tests/exchange/own_broker.py), on a port above
    the range the tests' nodes take, and point :data:`TARGET` at it."""
    sys.path.insert(0, str(ROOT / "tests" / "exchange"))
    import own_broker

    node = own_broker.OwnBroker(base, ports=range(17200, 17400, 2))  # not the tests' range
    node.start()
    TARGET.port = node.port
    TARGET.admin = RabbitAdmin(node=node.node, env=node.env, ctl=own_broker.CTL)
    TARGET.data_dir = base / "mnesia"
    return node


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

    ``queue_type="classic"`` is a variant for the sender side alone (:data:`CLASSIC_WHY`)."""
    document = definitions([sender, *inboxes], passwords, vhost=vhost)
    if queue_type == "classic":
        for queue in document["queues"]:
            arguments = queue["arguments"]
            for quorum_only in ("x-delivery-limit", "x-dead-letter-strategy"):
                arguments.pop(quorum_only, None)
            arguments["x-queue-type"] = "classic"
    users = {u["name"] for u in document["users"]} | {"guest"}
    document["permissions"] = [p for p in document["permissions"] if p["user"] in users]  # inboxes without a user
    TARGET.admin.import_definitions(document)
    return {o: f"amqp://{vhost}%2F{o}:{pw}@127.0.0.1:{TARGET.port}/{vhost}" for o, pw in passwords.items()}


SENDER_CHILD = HWM_FUNCTION + """
import asyncio, json, os, signal, subprocess, sys, time
sys.path.insert(0, {bench!r})
from bench_bulk import plan, directive, HANDED
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.client import AgencyClient
from vbdt.exchange.ledger import SqliteLedger
from vbdt.trust.keys import SigningKey

n, url, folder, workdir, profile = {n}, {url!r}, {folder!r}, {workdir!r}, {profile!r}
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
    spy = None
    if profile:  # py-spy attached to this process for the bulk_send window only
        spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid", str(os.getpid()),
                                "--format", "raw", "--rate", "250", "--threads", "--nonblocking", "-o", profile],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)
    HANDED.clear()
    start = time.perf_counter()
    run = await agency.bulk_send(doc, to=communes, on_event=event)
    end = time.perf_counter()
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    info = run.info()
    ledger_states = {{}}
    for d in run.deliveries():
        ledger_states[d.state.value] = ledger_states.get(d.state.value, 0) + 1
    with open(f"{{workdir}}/body.bin", "wb") as out:
        out.write(run.journal.body(run.run_id, run.document_ids()[0]))
    package = run.journal.documents(run.run_id)[0].size
    await agency.close()
    print(json.dumps({{"recipients": n, "handed_seconds": round(max(HANDED) - start, 3) if HANDED else None,
                      "confirmed_seconds": round(end - start, 3),
                      "plan_seconds": round(marks["planned"] - start, 3),
                      "publishing_seconds": round(marks["publishing"] - start, 3) if "publishing" in marks else None,
                      "confirmed": info.counts["confirmed"], "pending": info.counts["pending"],
                      "ledger_states": ledger_states, "package_bytes": package,
                      "peak_rss_mb": round(hwm() / 2**20, 1), "rss_before_mb": round(before / 2**20, 1)}}))

asyncio.run(main())
"""

RAW_CHILD = """
import asyncio, json, sys
sys.path.insert(0, {bench!r})
from bench_bulk import plan, raw_bcc
from vbdt.exchange.routing import routing_key
directory, sender, communes = plan({n})
body = open({body!r}, "rb").read()
handed, confirmed = asyncio.run(raw_bcc({url!r}, body, [routing_key(c) for c in communes]))
print(json.dumps({{"handed_seconds": round(handed, 3), "confirmed_seconds": round(confirmed, 3)}}))
"""

HANDED: list[float] = []
"""When each frame carrying a package (a publish, with its BCC header and body) was written to the
socket (aiormq's drain of the frame): the last one is when every copy was handed to the broker."""


def _probe_handed() -> None:
    """Record in :data:`HANDED` the moment aiormq drained each large frame to the socket (a measuring
    probe of this benchmark: it wraps aiormq's frame drain and changes nothing else)."""
    from aiormq.abc import ChannelFrame

    drain = ChannelFrame.drain
    if getattr(drain, "probed", False):
        return

    def probed(self: ChannelFrame) -> None:
        if self.should_drain and len(self.payload) >= 10_000:  # a package; passive declares and acks are small
            HANDED.append(time.perf_counter())
        drain(self)

    probed.probed = True  # type: ignore[attr-defined]
    ChannelFrame.drain = probed  # type: ignore[method-assign]


_probe_handed()


async def raw_bcc(url: str, body: bytes, keys: list[str]) -> tuple[float, float]:
    """Baseline: the same bytes to the same inboxes with raw aio-pika, one publish per 3,000 keys in
    BCC, confirms awaited together: the broker's own cost of the fan-out, with no vbdt around it.
    Seconds until the last publish was written to the socket, and until every confirm came."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=300)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("vbdt.exchange", ensure=False)
        user = url.split("//", 1)[1].split(":", 1)[0].replace("%2F", "/")
        chunks = [keys[i:i + 3000] for i in range(0, len(keys), 3000)]
        HANDED.clear()
        start = time.perf_counter()
        await asyncio.gather(*(exchange.publish(aio_pika.Message(body, user_id=user, headers={"BCC": c[1:]},
                                                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                                c[0], timeout=600) for c in chunks))
        confirmed = time.perf_counter() - start
        return (max(HANDED) - start if HANDED else confirmed), confirmed
    finally:
        await connection.close()


def profile_top(raw: Path, top: int = 15) -> dict[str, Any]:
    """The busiest functions of a py-spy raw profile (on-CPU samples of every thread): by own
    samples (where the CPU was), and vbdt's by samples with the function on the stack (inclusive)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in stack.split(";")[1:]]  # no thread, no line
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            if "vbdt/" in frame:
                inclusive[frame] = inclusive.get(frame, 0) + n

    def best(counts: dict[str, int]) -> dict[str, float]:
        return {name: round(c / max(total, 1) * 100, 1) for name, c in sorted(counts.items(), key=lambda kv: -kv[1])[:top]}

    return {"samples": total, "own_percent": best(own), "vbdt_inclusive_percent": best(inclusive)}


def _child(script: str, what: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=3600,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if out.returncode:
        raise RuntimeError(f"{what}: " + " | ".join(out.stderr.strip().splitlines()[-3:]))
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def sender_time(n: int, queue_type: str, profile: bool = False) -> dict[str, Any]:
    """vbdt's bulk_send to N fresh inboxes, then the raw baseline to N other fresh inboxes."""
    directory, sender, communes = plan(n)
    pki = TestPki.create([(sender, directory.get(sender).name)])
    here = str(Path(__file__).parent)
    result: dict[str, Any] = {"recipients": n, "queue_type": queue_type}
    if queue_type == "classic":
        result["classic_why"] = CLASSIC_WHY
    with tempfile.TemporaryDirectory() as work:
        pki.write(Path(work))
        raw = Path(work) / "profile.txt"
        vhost = f"vbdt-bench-bulk-{uuid.uuid4().hex[:6]}"
        try:
            start = time.perf_counter()
            urls = provision_inboxes(vhost, sender, communes, {sender: uuid.uuid4().hex}, queue_type)
            result["provision_seconds"] = round(time.perf_counter() - start, 2)
            result.update(_child(SENDER_CHILD.format(n=n, url=urls[sender], folder=work, workdir=work, bench=here,
                                                     profile=str(raw) if profile else ""), "vbdt sender"))
        except Exception as exc:  # reported in the JSON, the other sizes stand
            result["error"] = f"{type(exc).__name__}: {exc}"
            return result
        finally:
            deprovision(vhost, admin=TARGET.admin)
        if profile and raw.exists():
            result["profile"] = profile_top(raw)
        vhost = f"vbdt-bench-bulk-{uuid.uuid4().hex[:6]}"
        try:
            urls = provision_inboxes(vhost, sender, communes, {sender: uuid.uuid4().hex}, queue_type)
            baseline = _child(RAW_CHILD.format(n=n, url=urls[sender], body=str(Path(work) / "body.bin"), bench=here),
                              "raw baseline")
        except Exception as exc:
            result["baseline_error"] = f"{type(exc).__name__}: {exc}"
            return result
        finally:
            deprovision(vhost, admin=TARGET.admin)
    result["raw_bcc_handed_seconds"] = baseline["handed_seconds"]
    result["raw_bcc_confirmed_seconds"] = baseline["confirmed_seconds"]
    result["confirmed_over_raw"] = round(result["confirmed_seconds"] / baseline["confirmed_seconds"], 2)
    if result.get("handed_seconds") is not None:
        result["handed_minus_raw_handed_seconds"] = round(result["handed_seconds"] - baseline["handed_seconds"], 3)
    return result


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
            deprovision(vhost, admin=TARGET.admin)
    speed = openssl_speed()
    floor = n * (speed["rsa2048_sign_ms"] + speed["rsa2048_verify_ms"]) / 1000 if speed else None
    return {"recipients": n, "sender_seconds": round(handed, 3), "all_receipts_verified_seconds": round(total, 2),
            "openssl_floor_seconds": None if floor is None else round(floor, 3),
            "ratio_to_openssl_floor": None if not floor else round(total / floor, 1), "keygen_seconds": round(keygen, 1),
            "package_bytes": package}


def _node_memory() -> int:
    memory = TARGET.ctl("status").get("memory", {})
    return int(memory.get("total", {}).get("erlang", 0)) if isinstance(memory.get("total"), dict) else int(memory.get("total", 0))


def _disk_bytes(folder: Path | None) -> int | None:
    if folder is None or not folder.exists():
        return None
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


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
            memory_before, disk_before = _node_memory(), _disk_bytes(TARGET.data_dir)
            agency = AgencyClient(sender, transport=await AmqpTransport.connect(urls[sender], declare=False, timeout=300),
                                  ledger=SqliteLedger(folder / "sender.db"), key=pki.agencies[sender], trust=folder / "ca.pem",
                                  directory=directory, person=pki.signer, seal=pki.agencies[sender])
            await agency.open()
            start = time.perf_counter()
            run = await agency.bulk_send(directive(directory, sender, "07", pdf_bytes=size), to=communes)
            seconds = time.perf_counter() - start
            package = run.journal.documents(run.run_id)[0].size
            await agency.close()
            for _ in range(60):  # the broker's per-queue figures of quorum queues lag by seconds
                queues = [q for q in TARGET.ctl("list_queues", "-p", vhost, "name", "messages", "message_bytes",
                                                "messages_persistent", "message_bytes_persistent", "memory")
                          if str(q["name"]).startswith("vbdt.inbox.") and q["name"] != f"vbdt.inbox.{sender}"]
                if sum(int(q.get("messages") or 0) for q in queues) >= n:
                    break
                await asyncio.sleep(2)
            memory_after, disk_after = _node_memory(), _disk_bytes(TARGET.data_dir)
        finally:
            deprovision(vhost, admin=TARGET.admin)

    def total(column: str) -> int:
        return sum(int(q.get(column) or 0) for q in queues)  # a queue still starting reports ''

    stored = total("message_bytes")
    result = {"recipients": n, "queue_type": "quorum", "package_bytes": package, "sender_seconds": round(seconds, 2),
              "queues_reporting": len(queues), "messages": total("messages"), "message_bytes": stored,
              "messages_persistent": total("messages_persistent"), "message_bytes_persistent": total("message_bytes_persistent"),
              "stored_bytes_per_recipient": stored // max(1, len(queues)),
              "stored_over_package_times_n": round(stored / max(1, package * n), 3),
              "queue_memory_bytes_per_recipient": total("memory") // max(1, len(queues)),
              "node_memory_growth_bytes_per_recipient": (memory_after - memory_before) // n}
    if not stored:
        result["note"] = ("rabbitmqctl reports no message bytes for quorum queues (0): the broker's bytes are the growth "
                          "of its data directory (--own-node)")
    if disk_before is not None and disk_after is not None:
        result["data_dir_growth_bytes"] = disk_after - disk_before
        result["data_dir_growth_over_package_times_n"] = round((disk_after - disk_before) / (package * n), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="recipients, quorum inboxes (vbdt's topology)")
    parser.add_argument("--classic-sizes", default="3321,10000",
                        help="recipients, classic-queue inboxes: the sender side alone, where quorum inboxes are too many for the broker")
    parser.add_argument("--e2e", type=int, default=50, help="receivers for the end-to-end part (0: skip)")
    parser.add_argument("--broker-cost", type=int, default=1000, help="inboxes for the 1 MB directive (0: skip)")
    parser.add_argument("--own-node", action="store_true", help="run on a RabbitMQ node of the benchmark's own")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy on the sender during bulk_send (slows it a little): its busiest functions in the JSON")
    args = parser.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count(),
                               "broker": "own node" if args.own_node else "shared, 127.0.0.1:5672"}
    with tempfile.TemporaryDirectory(prefix="vbdt-bench-node-") as base:
        node = own_node(Path(base)) if args.own_node else None
        try:
            results["sender"] = []
            for queue_type, sizes in (("quorum", args.sizes), ("classic", args.classic_sizes)):
                for n in filter(None, sizes.split(",")):
                    results["sender"].append(sender_time(int(n), queue_type, args.profile))
                    print(json.dumps(results["sender"][-1]), file=sys.stderr)  # a later part failing loses nothing
            parts = {"end_to_end": (args.e2e, end_to_end), "broker_cost": (args.broker_cost, broker_cost)}
            for name, (n, part) in parts.items():
                if n:
                    try:
                        results[name] = asyncio.run(part(n))
                    except Exception as exc:  # reported in the JSON, the other parts stand
                        results[name] = {"recipients": n, "error": f"{type(exc).__name__}: {exc}"}
                    print(json.dumps(results[name]), file=sys.stderr)
        finally:
            if node is not None:
                node.stop()
    results["openssl_speed"] = openssl_speed()
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
