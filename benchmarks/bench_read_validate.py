"""Read + validate speed and memory, as a ratio against raw lxml in the same run.

    python benchmarks/bench_read_validate.py [--repeat N]

For each input (the interop samples and a generated package with a 10 MB PDF attachment) it times
``vbdt.validate`` (hardened parse, quirk repair, XSD, model, business rules) against the baseline
``lxml.etree.fromstring`` + ``XMLSchema.validate`` of the same bytes with the same compiled schema,
taking the best of N runs of each, interleaved. Peak memory is measured in a fresh process per
input as the growth of max RSS over the process after loading the bytes, divided by the file size
(the process has validated a small status message first: ``import vbdt`` is lazy, and the modules
the first call imports, pydantic's 18 MB among them, are not the cost of the package).
Targets: issue 2, time ratio <= 1.5 and memory ratio <= 3.0; issue 13, time ratio <= 2 for status
messages and small documents (the interop samples under 100 KB) and <= 1.2 at 14 MB. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from _inputs import HWM_FUNCTION, ROOT, big_package, interleaved_best
from lxml import etree

import vbdt
from vbdt.edxml.schemas import SchemaKind, schema


def time_pair(data: bytes, kind: SchemaKind, lenient: bool, repeat: int) -> tuple[float, float]:
    xsd = schema(kind)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)

    def baseline() -> None:
        xsd.validate(etree.fromstring(data, parser).getroottree())

    def ours() -> None:
        vbdt.validate(data, lenient=lenient)

    best = interleaved_best({"raw": baseline, "vbdt": ours}, repeat)
    return best["raw"], best["vbdt"]


MEMORY_PROBE = """
import sys
sys.path.insert(0, {src!r})
{hwm}import vbdt
from vbdt.edxml.schemas import SchemaKind, schema
schema(SchemaKind.DOCUMENT); schema(SchemaKind.STATUS)
vbdt.validate(open({warm!r}, 'rb').read(), lenient=True)  # what the first call imports (pydantic: 18 MB) is not the package's
data = open({path!r}, 'rb').read()
before = hwm()
report = vbdt.validate(data, lenient={lenient})
assert report.package is not None
if report.package.__class__.__name__ == 'Document':
    for a in report.package.attachments:
        a.size
print(hwm() - before)
"""


def peak_growth(path: Path, lenient: bool) -> int:
    warm = ROOT / "tests" / "data" / "interop" / "status-01-arrived.edxml"
    code = MEMORY_PROBE.format(src=str(ROOT / "src"), path=str(path), lenient=lenient, hwm=HWM_FUNCTION, warm=str(warm))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--size-mb", type=float, default=10.0)
    args = parser.parse_args()

    inputs: list[tuple[str, bytes, bool]] = []
    for path in sorted((ROOT / "tests" / "data" / "interop").glob("*.edxml")):
        inputs.append((path.name, path.read_bytes(), True))
    inputs.append((f"generated-{args.size_mb:g}MB-attachment", big_package(int(args.size_mb * 1024 * 1024)), False))

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, lenient in inputs:
            kind = SchemaKind.STATUS if name.startswith("status-") else SchemaKind.DOCUMENT
            repeat = args.repeat if len(data) < 1_000_000 else max(5, args.repeat // 3)
            raw, mine = time_pair(data, kind, lenient, repeat)
            path = Path(tmp) / name
            path.write_bytes(data)
            growth = peak_growth(path, lenient)
            results.append(
                {
                    "input": name,
                    "bytes": len(data),
                    "raw_lxml_ms": round(raw * 1000, 3),
                    "vbdt_ms": round(mine * 1000, 3),
                    "time_ratio": round(mine / raw, 3),
                    "peak_rss_growth_bytes": growth,
                    "memory_ratio": round(growth / len(data), 3),
                }
            )
    big = results[-1]
    samples = results[:-1]
    summary = {
        "benchmark": "read+validate vs raw lxml parse+XSD",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "libxml2": ".".join(map(str, etree.LIBXML_VERSION))},
        "targets": {"time_ratio": 1.5, "memory_ratio": 3.0, "issue_13": {"status_and_small_time_ratio": 2.0,
                                                                          "large_time_ratio": 1.2}},
        "status_time_ratio_max": max(r["time_ratio"] for r in samples if r["input"].startswith("status-")),
        "small_document_time_ratio_max": max(r["time_ratio"] for r in samples
                                             if not r["input"].startswith("status-") and r["bytes"] < 100_000),
        "interop_total_time_ratio": round(sum(r["vbdt_ms"] for r in samples) / sum(r["raw_lxml_ms"] for r in samples), 3),
        "large_time_ratio": big["time_ratio"],
        "large_memory_ratio": big["memory_ratio"],
        "max_memory_ratio_over_100KB": max(r["memory_ratio"] for r in results if r["bytes"] > 100_000),
        "results": results,
        "peak_rss_note": "growth of VmHWM in a fresh process, from after the bytes are loaded to after validate()",
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
