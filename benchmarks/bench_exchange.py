"""End-to-end exchange throughput and latency over the local RabbitMQ, against raw baselines.

    python benchmarks/bench_exchange.py [--documents 300] [--url amqp://guest:guest@127.0.0.1:5672/]

vbdt: an agency sends signed documents to another agency, ``--concurrency`` sends in flight; the receiver's
pipeline parses, validates, verifies (signature and sender), de-duplicates, stores, and sends a
signed 01 back; the sender verifies the receipt and updates its ledger. Measured from the first
send until every delivery is ``arrived`` in the sender's ledger; latency per document is from
its send to its 01 being applied.

Then the latency at a fixed load below saturation: ``--paced`` more documents sent at half the
throughput just measured (open loop, one every 2/throughput seconds), p50 and p99 from send to 01
applied.

Baselines, measured in the same run: the naive pipeline of issue 13 (``naive_pipeline.py``: signxml
sign, aio-pika publish to a quorum queue with confirms, consume, signxml verify, a signed receipt
back, verified) with the same document, keys and broker, reported as ``vbdt_over_naive`` (target
>= 1.0 with one worker); raw aio-pika publishing (confirms, persistent) and consuming (manual ack)
the same document bytes and the same receipt bytes, and ``openssl speed rsa2048`` for the two
signatures and two verifications each document costs. Their combined cost per document gives the
throughput "the baselines allow together" (target, issue 4: >= 60% of it).
Prints one JSON object. Needs rabbitmqctl on this host (a vhost is provisioned and deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import aio_pika
from _inputs import ROOT  # noqa: F401 - puts src/ on the path
from bench_sign_verify import openssl_speed
from naive_pipeline import NaiveKeys, naive_pipeline

from vbdt.cli.demo import compose
from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ, ResponseFor, StatusMessage
from vbdt.edxml.resources import example_directory_path
from vbdt.edxml.writer import write
from vbdt.exchange.amqp import AmqpTransport
from vbdt.exchange.broker import deprovision, provision
from vbdt.exchange.client import Agency
from vbdt.exchange.ledger import SqliteLedger
from vbdt.trust.pki import TestPki

H14, C1 = "000.00.00.H14", "000.00.01.H14"


async def raw_amqp(url: str, body: bytes, n: int) -> float:
    """Seconds per message for raw aio-pika: publish n (confirms, concurrent) then consume n (acks)."""
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(f"bench-{uuid.uuid4().hex[:6]}", durable=True, arguments={"x-queue-type": "quorum"})
    consumer = await connection.channel()
    await consumer.set_qos(prefetch_count=32)
    cq = await consumer.get_queue(queue.name, ensure=False)
    start = time.perf_counter()
    await asyncio.gather(*(channel.default_exchange.publish(aio_pika.Message(body, delivery_mode=2), queue.name) for _ in range(n)))
    got = 0
    async with cq.iterator() as it:
        async for message in it:
            await message.ack()
            got += 1
            if got == n:
                break
    elapsed = time.perf_counter() - start
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return elapsed / n


async def run(url: str, n: int, tmp: Path, concurrency: int = 16, paced: int = 100) -> dict[str, object]:
    directory = Directory.load(example_directory_path())
    pki = TestPki.create([(H14, "UBND Tinh Cao Bang"), (C1, "UBND Phuong Thuc Phan")])
    pki.write(tmp / "pki")
    vhost = f"vbdt-bench-{uuid.uuid4().hex[:6]}"
    from yarl import URL

    parsed = URL(url)
    urls = provision([H14, C1], vhost=vhost, host=parsed.host or "127.0.0.1", port=parsed.port or 5672).urls
    applied: dict[str, float] = {}

    def on_receipt(status: StatusMessage) -> None:
        if status.status_code is StatusCode.ARRIVED and status.response_for.document_id:
            applied[status.response_for.document_id] = time.perf_counter()

    async def agency(organ_id: str) -> Agency:
        a = Agency(organ_id, transport=await AmqpTransport.connect(urls[organ_id], declare=False),
                   ledger=SqliteLedger(tmp / f"{organ_id}.db"), key=pki.agencies[organ_id], trust=tmp / "pki" / "ca.pem",
                   directory=directory, pdf_policy="ignore", on_receipt=on_receipt)
        await a.open()
        return a

    sender, receiver = await agency(H14), await agency(C1)

    async def pump(a: Agency) -> None:
        async for _ in a.inbox():
            pass

    tasks = [asyncio.create_task(pump(sender)), asyncio.create_task(pump(receiver))]
    documents = [compose(directory, H14, [C1], number=str(i), notation="UBND-VP", type_name="Công văn",
                         subject=f"Văn bản đo hiệu năng số {i}", issued=date.today()) for i in range(1, n + 1)]
    sent_at: dict[str, float] = {}
    window = asyncio.Semaphore(concurrency)

    async def send(doc):  # type: ignore[no-untyped-def]
        async with window:
            sent_at[str(doc.document_id)] = time.perf_counter()
            await sender.send(doc)

    start = time.perf_counter()
    await asyncio.gather(*(send(doc) for doc in documents))
    while len(applied) < n:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    saturated = dict(sent_at)

    # the same pipeline at half the throughput just measured: open loop, one send every 1/rate s
    rate = 0.5 * n / elapsed
    more = [compose(directory, H14, [C1], number=str(i), notation="UBND-VP", type_name="Công văn",
                    subject=f"Văn bản đo độ trễ số {i}", issued=date.today()) for i in range(n + 1, n + paced + 1)]
    paced_start = time.perf_counter()

    async def send_at(i: int, doc) -> None:  # type: ignore[no-untyped-def]
        await asyncio.sleep(max(0.0, paced_start + i / rate - time.perf_counter()))
        sent_at[str(doc.document_id)] = time.perf_counter()
        await sender.send(doc)

    await asyncio.gather(*(send_at(i, doc) for i, doc in enumerate(more)))
    while len(applied) < n + paced:
        await asyncio.sleep(0.005)
    paced_latencies = sorted((applied[str(d.document_id)] - sent_at[str(d.document_id)]) * 1000 for d in more)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    sample_doc = sender.ledger.pending() or None
    assert sample_doc is None
    doc_bytes = sender.ledger._file.query("SELECT b.body FROM outbox o JOIN bodies b USING (digest) WHERE o.kind='document' LIMIT 1")[0][0]
    receipt_bytes = receiver.ledger._file.query("SELECT b.body FROM outbox o JOIN bodies b USING (digest) WHERE o.kind='status' LIMIT 1")[0][0]
    await sender.transport.close()
    await receiver.transport.close()
    latencies = sorted((applied[d] - saturated[d]) * 1000 for d in saturated)
    # the naive pipeline, same broker, keys and document, in the same minute
    ca_pem = (tmp / "pki" / "ca.pem").read_bytes()
    receipt = write(StatusMessage(
        sender=directory.organization(C1), status_code=StatusCode.ARRIVED,
        timestamp=dt.datetime.now(VIETNAM_TZ).replace(microsecond=0),
        response_for=ResponseFor(organ_id=H14, code=documents[0].code, promulgation_date=documents[0].promulgation.date,
                                 document_id=documents[0].document_id)))
    naive = await naive_pipeline(f"{url.rstrip('/')}/{vhost}", write(documents[0]), receipt,
                                 NaiveKeys.of(pki.agencies[H14], ca_pem), NaiveKeys.of(pki.agencies[C1], ca_pem),
                                 str(tmp / "pki" / "ca.pem"), n, concurrency)
    raw_doc = await raw_amqp(f"{url.rstrip('/')}/{vhost}", bytes(doc_bytes), n)  # type: ignore[arg-type]
    raw_receipt = await raw_amqp(f"{url.rstrip('/')}/{vhost}", bytes(receipt_bytes), n)  # type: ignore[arg-type]
    deprovision(vhost)
    rsa = openssl_speed() or {"rsa2048_sign_ms": 0.0, "rsa2048_verify_ms": 0.0}
    baseline_ms = (raw_doc + raw_receipt) * 1000 + 2 * (rsa["rsa2048_sign_ms"] + rsa["rsa2048_verify_ms"])
    ours_ms = elapsed * 1000 / n
    return {
        "documents": n,
        "sends_in_flight": concurrency,
        "document_bytes": len(doc_bytes),  # type: ignore[arg-type]
        "receipt_bytes": len(receipt_bytes),  # type: ignore[arg-type]
        "vbdt_docs_per_s": round(n / elapsed, 1),
        "vbdt_ms_per_doc": round(ours_ms, 3),
        "latency_ms": {"p50": round(statistics.median(latencies), 2), "p99": round(latencies[int(0.99 * (n - 1))], 2)},
        "latency_at_half_load_ms": {"documents_per_s": round(rate, 1), "documents": paced,
                                    "p50": round(statistics.median(paced_latencies), 2),
                                    "p99": round(paced_latencies[int(0.99 * (paced - 1))], 2)},
        "naive": {"docs_per_s": round(naive["docs_per_s"], 1), "latency_ms": {"p50": round(naive["p50_ms"], 2),
                                                                             "p99": round(naive["p99_ms"], 2)}},
        "vbdt_over_naive": round((n / elapsed) / naive["docs_per_s"], 3),
        "baseline": {"raw_aiopika_doc_ms": round(raw_doc * 1000, 3), "raw_aiopika_receipt_ms": round(raw_receipt * 1000, 3),
                     "openssl": rsa, "ms_per_doc": round(baseline_ms, 3), "docs_per_s": round(1000 / baseline_ms, 1)},
        "fraction_of_baseline": round(baseline_ms / ours_ms, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16, help="Sends in flight at once.")
    parser.add_argument("--paced", type=int, default=100, help="Documents sent at half the measured throughput.")
    parser.add_argument("--url", default=os.environ.get("VBDT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.url, args.documents, Path(tmp), args.concurrency, args.paced))
    print(json.dumps({
        "benchmark": "end-to-end exchange over RabbitMQ vs the naive pipeline, raw aio-pika + openssl speed",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "target": {"fraction_of_baseline": 0.6, "vbdt_over_naive": 1.0},
        **result,
    }, indent=2))


if __name__ == "__main__":
    main()
