"""The baseline of issue 13: the pipeline anyone would write in an afternoon, on the same broker.

signxml signs the document; aio-pika publishes it (persistent, publisher confirms, a quorum queue);
the receiver consumes it, verifies it with signxml against the CA, signs a receipt and publishes it
back; the sender verifies the receipt. No validation, no ledger, no dedupe, no sender binding: it
is what vbdt must beat while still doing all of those.

    python benchmarks/naive_pipeline.py [--documents 300] [--concurrency 16]

Used by bench_exchange.py in the same run and minute, with the same document, keys and broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
from _inputs import ROOT  # noqa: F401 - puts src/ on the path
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureMethod, XMLSigner, XMLVerifier

from vbdt.trust.keys import SigningKey

__all__ = ["NaiveKeys", "naive_pipeline"]


@dataclass(frozen=True)
class NaiveKeys:
    """What the naive pipeline hands to signxml: the key loaded once (loading an RSA key costs ~50 ms),
    the certificate chain as PEM text, and the trust anchor."""

    key: Any
    cert_pem: bytes
    ca_pem: bytes

    @classmethod
    def of(cls, key: SigningKey, ca_pem: bytes) -> NaiveKeys:
        """PEM of a vbdt signing key and the trust anchor."""
        return cls(
            key.private_key,
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (key.certificate, *key.chain)),
            ca_pem,
        )


def _sign(data: bytes, keys: NaiveKeys) -> bytes:
    signer = XMLSigner(signature_algorithm=SignatureMethod.RSA_SHA256)
    signed = signer.sign(etree.fromstring(data), key=keys.key, cert=keys.cert_pem.decode())
    return etree.tostring(signed)  # type: ignore[no-any-return]


def _ca_verify(data: bytes, ca_file: str) -> None:
    XMLVerifier().verify(data, ca_pem_file=ca_file)


async def naive_pipeline(url: str, document: bytes, receipt: bytes, sender: NaiveKeys, receiver: NaiveKeys,
                         ca_file: str, n: int, concurrency: int = 16) -> dict[str, float]:
    """Send ``n`` documents through the naive pipeline; docs/s and latency percentiles."""
    connection = await aio_pika.connect(url)
    publish_channel = await connection.channel(publisher_confirms=True)
    receive_channel = await connection.channel()
    await receive_channel.set_qos(prefetch_count=32)
    suffix = uuid.uuid4().hex[:8]
    args = {"x-queue-type": "quorum"}
    inbox = await publish_channel.declare_queue(f"naive-inbox-{suffix}", durable=True, arguments=args)
    replies = await publish_channel.declare_queue(f"naive-replies-{suffix}", durable=True, arguments=args)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def on_document(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await asyncio.to_thread(_ca_verify, message.body, ca_file)
        signed_receipt = await asyncio.to_thread(_sign, receipt, receiver)
        await publish_channel.default_exchange.publish(
            aio_pika.Message(signed_receipt, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             correlation_id=message.message_id), replies.name)
        await message.ack()

    async def on_receipt(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await asyncio.to_thread(_ca_verify, message.body, ca_file)
        await message.ack()
        latencies.append(time.perf_counter() - sent_at[str(message.correlation_id)])
        if len(latencies) == n:
            done.set()

    # each delivery handled in its own task, up to the prefetch, as the aio-pika docs show
    tasks: set[asyncio.Task[None]] = set()

    def spawn(handler):  # type: ignore[no-untyped-def]
        async def consume(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            task = asyncio.create_task(handler(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return consume

    await (await receive_channel.get_queue(inbox.name)).consume(spawn(on_document))
    await (await receive_channel.get_queue(replies.name)).consume(spawn(on_receipt))
    window = asyncio.Semaphore(concurrency)

    async def send(i: int) -> None:
        async with window:
            message_id = f"doc-{i}"
            sent_at[message_id] = time.perf_counter()
            body = await asyncio.to_thread(_sign, document, sender)
            await publish_channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=message_id), inbox.name)

    start = time.perf_counter()
    await asyncio.gather(*(send(i) for i in range(n)))
    await asyncio.wait_for(done.wait(), timeout=max(60.0, n * 0.5))
    elapsed = time.perf_counter() - start
    await inbox.delete(if_unused=False, if_empty=False)
    await replies.delete(if_unused=False, if_empty=False)
    await connection.close()
    ordered = sorted(latencies)
    return {"docs_per_s": n / elapsed, "p50_ms": ordered[len(ordered) // 2] * 1000,
            "p99_ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000}


def main() -> None:
    import datetime as dt
    import tempfile
    from datetime import date
    from pathlib import Path

    from vbdt.cli.demo import compose
    from vbdt.directory.agencies import Directory
    from vbdt.edxml.codes import StatusCode
    from vbdt.edxml.model import VIETNAM_TZ, ResponseFor, StatusMessage
    from vbdt.edxml.resources import example_directory_path
    from vbdt.edxml.writer import write
    from vbdt.trust.pki import TestPki

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--url", default=os.environ.get("VBDT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    args = parser.parse_args()
    directory = Directory.load(example_directory_path())
    h14, c1 = "000.00.00.H14", "000.00.01.H14"
    pki = TestPki.create([(h14, "UBND Tinh Cao Bang"), (c1, "UBND Phuong Thuc Phan")])
    document = compose(directory, h14, [c1], number="1", notation="UBND-VP", type_name="Công văn",
                       subject="Văn bản đo hiệu năng", issued=date.today())
    doc = write(document)
    receipt = write(StatusMessage(
        sender=directory.organization(c1), status_code=StatusCode.ARRIVED, timestamp=dt.datetime.now(VIETNAM_TZ).replace(microsecond=0),
        response_for=ResponseFor(organ_id=h14, code=document.code, promulgation_date=document.promulgation.date,
                                 document_id=document.document_id)))
    with tempfile.TemporaryDirectory() as tmp:
        pki.write(Path(tmp))
        ca_pem = (Path(tmp) / "ca.pem").read_bytes()
        result = asyncio.run(naive_pipeline(args.url, doc, receipt, NaiveKeys.of(pki.agencies[h14], ca_pem),
                                            NaiveKeys.of(pki.agencies[c1], ca_pem), str(Path(tmp) / "ca.pem"),
                                            args.documents, args.concurrency))
    print(json.dumps({"benchmark": "naive pipeline (signxml + aio-pika)", **{k: round(v, 2) for k, v in result.items()}}))


if __name__ == "__main__":
    main()
