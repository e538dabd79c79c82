"""Inputs and timing helpers shared by the benchmarks (not a benchmark itself)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import vbdt  # noqa: E402


def directive() -> vbdt.Document:
    """The demo directive (province to its 56 communes, a one-page PDF): about 12 KB written."""
    from vbdt.cli.demo import build_directive

    return build_directive(vbdt.Directory.load(ROOT / "examples" / "directory.json"), issued=date(2026, 11, 23))


def big_package(size: int) -> bytes:
    """The directive with an incompressible attachment of ``size`` bytes (like a scanned PDF)."""
    doc = directive()
    pdf = doc.attachments[0].read()
    payload = pdf + os.urandom(size - len(pdf))
    doc.attachments = [vbdt.Attachment.from_bytes("05-CT-UBND.pdf", payload, content_id="cid:1")]
    return vbdt.write(doc)


def interleaved_best(funcs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best time in seconds of each function over ``repeat`` rounds, run in turn so noise hits all."""
    for func in funcs.values():
        func()  # warm-up
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


HWM_FUNCTION = """
def hwm():  # peak resident set size so far (Linux), in bytes
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) * 1024
    raise SystemExit('no /proc/self/status')
"""
