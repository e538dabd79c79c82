"""Memory of the multi-agency host: what one more agency costs, against a process per agency.

    python benchmarks/bench_host.py [--agencies 300]

Three fresh child processes, each measured (``VmRSS`` after a garbage collection) once every
hosted agency has received, verified, stored, receipted and acknowledged one document:

- ``empty``: the interpreter with vbdt and its libraries imported, nothing running;
- ``one``: an :class:`~vbdt.exchange.host.AgencyHost` serving 1 agency, which is what each
  ``vbdt listen`` process costs (the issue's deployment: one process per commune);
- ``many``: the same host serving ``--agencies`` agencies (communes and districts of the example
  directory) on one reading connection.

``per_extra_agency_mib = (many - one) / (agencies - 1)``; the ratio against ``one`` says how much
less one more agency costs in the host than one more process. The embedded broker carries the
messages so that only the host is measured (the broker's queues live in the same process but hold
nothing once everything is acknowledged). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

from _inputs import ROOT  # noqa: F401 - puts src/ on the path

H14 = "000.00.00.H14"
HOST_USER = "hosts/bench"


def rss_mib() -> float:
    """Resident memory of this process now, in MiB."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


async def hosted(count: int, folder: Path) -> dict[str, float]:
    """Serve ``count`` agencies, deliver one document to each, return the RSS and the time taken."""
    from vbdt.cli.demo import compose
    from vbdt.directory.agencies import Directory
    from vbdt.edxml.resources import example_directory_path
    from vbdt.exchange.client import AgencyClient, InboxItem
    from vbdt.exchange.connect import connect
    from vbdt.exchange.host import AgencyHost, HostedAgency
    from vbdt.exchange.ledger import SqliteLedger
    from vbdt.exchange.memory import MemoryBroker
    from vbdt.trust.pki import TestPki

    directory = Directory.load(example_directory_path())
    ids = [a.organ_id for a in directory.select("**:commune")] + [a.organ_id for a in directory.select("**:district")]
    ids = ids[:count]
    pki = TestPki.create([(o, directory.get(o).name) for o in [H14, *ids]], kind="ec")
    pki.write(folder)
    broker = MemoryBroker.named("bench")
    broker.provision([H14, *ids])
    broker.provision_host(HOST_USER, ids)
    got: list[str] = []

    def register(client: AgencyClient, item: InboxItem) -> None:
        got.append(client.organ_id)

    province = AgencyClient(H14, transport=await connect(f"memory://{H14}@bench"), ledger=SqliteLedger(folder / "p.db"),
                            key=pki.agencies[H14], trust=folder / "ca.pem", directory=directory)
    agencies = [HostedAgency(o, key=pki.agencies[o], ledger=folder / f"{o}.db", url=f"memory://{o}@bench") for o in ids]
    start = time.perf_counter()
    async with province, AgencyHost(f"memory://{quote(HOST_USER, safe='')}@bench", agencies, trust=folder / "ca.pem",
                                    directory=directory, pdf_policy="report", on_item=register, idle_close=0.5) as host:
        doc = compose(directory, H14, ids, number="12", notation="CT-UBND", type_name="Chỉ thị",
                      subject="Về việc phòng, chống thiên tai", issued=date.today())
        await province.send(doc)
        while len(got) < count:
            await asyncio.sleep(0.05)
        while host.publishing_connections:  # the receipts went out; idle connections closed
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - start
        return {"rss_mib": rss_mib(), "seconds": seconds}


def child(mode: str, count: int) -> None:
    import vbdt.exchange.host  # noqa: F401 - the libraries every mode has loaded

    if mode == "empty":
        print(json.dumps({"rss_mib": rss_mib()}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(hosted(count, Path(tmp)))))


def measure(mode: str, count: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--agencies", str(count)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agencies", type=int, default=300)
    parser.add_argument("--child", choices=["empty", "one", "many"])
    args = parser.parse_args()
    if args.child:
        child(args.child, 1 if args.child == "one" else args.agencies)
        return
    empty = measure("empty", 0)
    one = measure("one", 1)
    many = measure("many", args.agencies)
    per_extra = (many["rss_mib"] - one["rss_mib"]) / (args.agencies - 1)
    print(json.dumps({
        "benchmark": "host memory per agency",
        "agencies": args.agencies,
        "python": platform.python_version(),
        "rss_empty_process_mib": round(empty["rss_mib"], 1),
        "rss_one_agency_mib": round(one["rss_mib"], 1),
        "rss_many_agencies_mib": round(many["rss_mib"], 1),
        "one_agency_over_empty_mib": round(one["rss_mib"] - empty["rss_mib"], 2),
        "per_extra_agency_mib": round(per_extra, 3),
        "per_extra_agency_vs_process_per_agency": round(per_extra / one["rss_mib"], 4),
        "processes_per_agency_mib_for_all": round(one["rss_mib"] * args.agencies, 1),
        "host_for_all_mib": round(many["rss_mib"], 1),
        "seconds_to_deliver_to_all": round(many["seconds"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
