"""One directive to thousands of receivers, end to end, on a RabbitMQ node of the benchmark's own.

    python benchmarks/bench_bulk_e2e.py [--recipients 10000] [--per-host 1000] [--queue-type quorum] [--group 100]

What the bulk issue asks for: the time until every arrival is acknowledged and every signed 01
receipt is verified and applied in the sender's ledger, with the receivers simulated by the
multi-agency host (:class:`~vbdt.exchange.host.AgencyHost`) in several processes of
``--per-host`` agencies each, and that time divided by the raw cost of the signatures and
verifications from ``openssl speed`` in the same run.

The node is started for the run (own name, ports and data dir; the shared broker at
127.0.0.1:5672 is never touched) because creating thousands of quorum inboxes keeps a broker
busy for minutes. Every agency has its own broker user and publishes its receipt as itself, as in
production. Keys are ECDSA P-256 (ten thousand RSA keys would take longer to generate than the
run); the floor is computed with the same algorithm: per receiver one verification of the
directive's envelope, one signature of the 01 and one verification of it at the sender. The
RSA-2048 floor (the issue's measure; agencies' keys are RSA) is reported beside it.
The directive carries no PDF here: PAdES verification is measured by bench_sign_verify.py.

Prints one JSON object: the times (provisioning, hosts ready, sender hand-over, all receipts
applied), the receipts applied per second, the floor and the ratio, and the broker's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _inputs import ROOT  # puts src/ on the path

sys.path.insert(0, str(ROOT / "tests" / "exchange"))  # the own-node helper the fault tests use

from bench_bulk import directive, plan
from own_broker import CTL, OwnBroker

VHOST = "bench-bulk-e2e"

HOST_CHILD = """
import asyncio, json, signal, sys
sys.path.insert(0, {bench!r})
from bench_bulk import plan
from vbdt.exchange.host import AgencyHost, HostedAgency
from vbdt.exchange.ledger import SqliteLedger
from vbdt.trust.keys import SigningKey

folder, spec = {folder!r}, json.loads(open({spec!r}).read())
directory, _, _ = plan({n})

async def main():
    def accept(client, item):
        pass  # stored, 01 sent and acknowledged by the host before it is handed over
    agencies = [HostedAgency(o, key=SigningKey.from_pem(f"{{folder}}/{{o}}.key.pem", f"{{folder}}/{{o}}.cert.pem"),
                             ledger=SqliteLedger(":memory:"), url=url) for o, url in spec["agencies"].items()]
    host = AgencyHost(spec["host_url"], agencies, trust=f"{{folder}}/ca.pem", directory=directory,
                      pdf_policy="report", on_item=accept, idle_close=5.0)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with host:
        print("ready", flush=True)
        await stop.wait()

asyncio.run(main())
"""


def openssl_speed() -> dict[str, float] | None:
    """Milliseconds per signature and verification on this machine, from ``openssl speed``: ECDSA
    P-256 (the run's keys) and RSA-2048 (what agencies hold, the floor the bulk issue names)."""
    found: dict[str, float] = {}
    patterns = {  # the rates (sign/s, verify/s) keep the precision the times round away
        "ecdsap256": r"ecdsa \(nistp256\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)",
        "rsa2048": r"rsa\s+2048 bits\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)",
    }
    for algorithm, pattern in patterns.items():
        try:
            out = subprocess.run(["openssl", "speed", "-seconds", "2", algorithm], capture_output=True, text=True,
                                 timeout=120).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        match = re.search(pattern, out)
        if match is None:
            return None
        found[f"{algorithm}_sign_ms"] = round(1000 / float(match[1]), 5)
        found[f"{algorithm}_verify_ms"] = round(1000 / float(match[2]), 5)
    return found


def broker_memory(broker: OwnBroker) -> int | None:
    result = broker.ctl("status", "--formatter", "json")
    try:
        return int(json.loads(result.stdout)["memory"]["total"]["rss"])
    except (ValueError, KeyError, TypeError):
        return None


async def run(n: int, per_host: int, queue_type: str, work: Path, group: int) -> dict[str, Any]:
    from vbdt.exchange.amqp import AmqpTransport
    from vbdt.exchange.broker import provision, provision_host
    from vbdt.exchange.bulk import BulkItem
    from vbdt.exchange.client import AgencyClient
    from vbdt.exchange.ledger import SqliteLedger
    from vbdt.exchange.rabbitadmin import RabbitAdmin
    from vbdt.trust.pki import TestPki

    directory, sender, communes = plan(n)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    pki = TestPki.create([(o, directory.get(o).name) for o in [sender, *communes]], kind="ec")
    pki.write(work)
    timings["keys_seconds"] = time.perf_counter() - start

    broker = OwnBroker(work / "node")
    broker.start()
    hosts: list[subprocess.Popen[str]] = []
    try:
        start = time.perf_counter()
        where = {"node": broker.node, "env": broker.env, "ctl": CTL, "port": broker.port}
        if queue_type == "classic":  # the variant for a broker that cannot hold n quorum queues
            from vbdt.exchange import broker as provisioning

            quorum = provisioning.inbox_arguments
            provisioning.inbox_arguments = lambda limits: {  # type: ignore[assignment]
                k: v for k, v in {**quorum(limits), "x-queue-type": "classic"}.items()
                if k not in ("x-delivery-limit", "x-dead-letter-strategy")}
        provisioned = provision([sender, *communes], vhost=VHOST, admin="guest", **where)  # type: ignore[arg-type]
        timings["provision_seconds"] = time.perf_counter() - start

        start = time.perf_counter()
        for index in range(0, n, per_host):
            chunk = communes[index:index + per_host]
            host_url = provision_host(f"h{index // per_host}", chunk, vhost=VHOST, **where)  # type: ignore[arg-type]
            spec = work / f"host{index}.json"
            spec.write_text(json.dumps({"host_url": host_url, "agencies": {o: provisioned.urls[o] for o in chunk}}))
            code = HOST_CHILD.format(bench=str(Path(__file__).parent), folder=str(work), spec=str(spec), n=n)
            hosts.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                          stderr=open(work / f"host{index}.err", "w")))
            # one host starts at a time, as an operator brings hosts up: thousands of consumers
            # opened at once on a 2-core node time out (the broker answers none within 10 s)
            line = hosts[-1].stdout.readline() if hosts[-1].stdout else ""
            if line.strip() != "ready":
                raise SystemExit(f"a host did not start (see {work}/host{index}.err)")
        timings["hosts_ready_seconds"] = time.perf_counter() - start
        memory_idle = broker_memory(broker)

        transport = await AmqpTransport.connect(provisioned.urls[sender], declare=False, timeout=300)
        async with AgencyClient(sender, transport=transport, ledger=SqliteLedger(work / "sender.db"),
                                key=pki.agencies[sender], trust=work / "ca.pem", directory=directory) as agency:
            agency.serve()
            start = time.perf_counter()
            bulk = await agency.bulk(group=group).send([BulkItem(directive(directory, sender, "07"), communes)])
            timings["sender_handed_seconds"] = time.perf_counter() - start
            (planned,) = bulk.journal.documents(bulk.run_id)
            await bulk.wait_arrived(timeout=7200, poll=0.5)  # each poll counts (no row per recipient)
            timings["all_receipts_applied_seconds"] = time.perf_counter() - start
            arrived = await bulk.wait_arrived(timeout=60)
            memory_loaded = broker_memory(broker)
    finally:
        for host in hosts:
            host.send_signal(signal.SIGTERM)
        for host in hosts:
            try:
                host.wait(60)
            except subprocess.TimeoutExpired:
                host.kill()
        try:  # the node is stopped and its data deleted anyway: a slow delete must not hide the first error
            RabbitAdmin(node=broker.node, env=broker.env, ctl=CTL).delete_vhost(VHOST)
        except Exception as exc:
            print(f"deleting the vhost failed: {exc}", file=sys.stderr)
        broker.stop()

    speed = openssl_speed()

    def floor_of(algorithm: str) -> float | None:  # per receiver: its envelope verified, its 01 signed and verified
        return None if speed is None else n * (speed[f"{algorithm}_sign_ms"] + 2 * speed[f"{algorithm}_verify_ms"]) / 1000

    floor, rsa_floor = floor_of("ecdsap256"), floor_of("rsa2048")
    total = timings["all_receipts_applied_seconds"]
    return {
        "benchmark": "bulk directive end to end through multi-agency hosts on an own RabbitMQ node",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "recipients": n, "hosts": len(hosts), "agencies_per_host": per_host, "queue_type": queue_type,
        "key_algorithm": "ECDSA P-256", "recipients_per_envelope": group, "envelopes": planned.parts,
        "envelope_bytes": planned.size,
        **{k: round(v, 2) for k, v in timings.items()},
        "receipts_applied": arrived,
        "receipts_per_second": round(arrived / total, 1),
        "openssl": speed,
        "openssl_floor_seconds": None if floor is None else round(floor, 3),
        "ratio_to_openssl_floor": None if not floor else round(total / floor, 1),
        "openssl_rsa2048_floor_seconds": None if rsa_floor is None else round(rsa_floor, 3),
        "ratio_to_openssl_rsa2048_floor": None if not rsa_floor else round(total / rsa_floor, 1),
        "broker_rss_bytes": {"hosts_connected": memory_idle, "after_run": memory_loaded},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--per-host", type=int, default=1_000,
                        help="agencies per host process (one reading connection each; AMQP allows 2047 channels)")
    parser.add_argument("--queue-type", choices=["quorum", "classic"], default="quorum")
    parser.add_argument("--group", type=int, default=100,
                        help="recipients listed in each signed envelope (vbdt.exchange.bulk.GROUP; n: one envelope for all)")
    args = parser.parse_args()
    if not OwnBroker.available():
        raise SystemExit("rabbitmq-server is not installed (python3 dev.py test installs it)")
    with tempfile.TemporaryDirectory(prefix="vbdt-bulk-e2e-") as work:
        print(json.dumps(asyncio.run(run(args.recipients, args.per_host, args.queue_type, Path(work), args.group)), indent=2))


if __name__ == "__main__":
    main()
