#!/usr/bin/env python3
"""Set up and run vbdt on a fresh machine that has nothing but Python.

    python3 dev.py demo [ARGS...]   create .venv, install vbdt, run `vbdt demo ARGS`
    python3 dev.py test [ARGS...]   also install the independent checkers and RabbitMQ, start the
                                    broker if none answers, then run the whole test suite (pytest)
    python3 dev.py bench            run the benchmarks and print their JSON summaries

Only the standard library is used here: this file is what makes everything else available.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"

# Debian packages the tests use as independent checkers, and the broker.
SYSTEM_TOOLS = {
    "xmlsec1": "xmlsec1",
    "pdfsig": "poppler-utils",
    "qpdf": "qpdf",
    "softhsm2-util": "softhsm2",
    "rabbitmq-server": "rabbitmq-server",
    "chromium": "chromium",
}


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(*cmd: str | Path, check: bool = True, **kwargs: object) -> int:
    return subprocess.run([str(c) for c in cmd], check=check, **kwargs).returncode  # type: ignore[call-overload]


def ensure_venv(extras: str) -> None:
    """Create .venv and install vbdt (editable) once per change of pyproject.toml."""
    if not PY.exists():
        log("creating .venv")
        run(sys.executable, "-m", "venv", VENV)
        run(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extras}]" if extras else "."
    log(f"installing vbdt{f'[{extras}]' if extras else ''} into .venv")
    run(PY, "-m", "pip", "install", "-q", "-e", target, cwd=ROOT)
    stamp.write_text(digest)


def ensure_system_tools() -> None:
    """Install missing Debian packages (root only); report what is still missing."""
    missing = sorted({pkg for tool, pkg in SYSTEM_TOOLS.items() if not _have(tool)})
    if not missing:
        return
    apt = shutil.which("apt-get")
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if apt and is_root:
        log(f"installing {' '.join(missing)} from Debian's packages")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(apt, "update", "-q", check=False, env=env, stdout=subprocess.DEVNULL)
        run(apt, "install", "-y", "-q", *missing, check=False, env=env, stdout=subprocess.DEVNULL)
    still = sorted({pkg for tool, pkg in SYSTEM_TOOLS.items() if not _have(tool)})
    if still:
        log(f"WARNING: still missing {' '.join(still)}; tests needing them fail under CI, skip elsewhere")


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or Path("/usr/sbin", tool).exists()


def broker_answers(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_broker() -> None:
    """Start the shared RabbitMQ node when nothing answers on 5672."""
    if os.environ.get("VBDT_AMQP_URL") or broker_answers():
        return
    server = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
    if not Path(server).exists():
        log("WARNING: no RabbitMQ answers and rabbitmq-server is not installed")
        return
    log("starting RabbitMQ (rabbitmq-server -detached)")
    run(server, "-detached", check=False)
    for _ in range(90):
        if broker_answers():
            log("RabbitMQ is up")
            return
        time.sleep(1)
    log("WARNING: RabbitMQ did not come up within 90 s")


# Vhosts that only vbdt's own tests and benchmarks create (with their users, ``<vhost>/...``).
_TEST_VHOSTS = ("vbdt-test-", "vbdt-peer-", "vbdt-bench-")

_CLEAN = """
import sys
from vbdt.exchange.broker import deprovision
from vbdt.exchange.rabbitadmin import RabbitAdmin
admin = RabbitAdmin()
for vhost in sys.argv[1:]:
    deprovision(vhost, admin=admin)
"""


def clean_stale_test_vhosts() -> None:
    """Delete the vhosts (and users) an interrupted earlier run of the tests left on the shared broker.

    A killed run cannot clean up after itself, and every quorum inbox it left holds file handles of
    the broker (1024 by default): enough leftovers and the broker stops accepting connections."""
    if os.environ.get("VBDT_AMQP_URL") or not shutil.which("rabbitmqctl"):
        return
    listed = subprocess.run(["rabbitmqctl", "list_vhosts", "--quiet", "--no-table-headers"], capture_output=True,
                            text=True, timeout=120, check=False)
    users = subprocess.run(["rabbitmqctl", "list_users", "--quiet", "--no-table-headers"], capture_output=True,
                           text=True, timeout=120, check=False)
    # users outlive a vhost deleted by hand: their vhost is the part of the name before the first "/"
    owners = {line.split()[0].split("/")[0] for line in users.stdout.splitlines() if "/" in line}
    stale = sorted({v for v in [*listed.stdout.split(), *owners] if v.startswith(_TEST_VHOSTS)})
    if stale:
        log(f"deleting {len(stale)} vhosts left by an interrupted test run: {', '.join(stale)}")
        run(PY, "-c", _CLEAN, *stale, check=False, cwd=ROOT)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "bench"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure_venv("")
        return run(BIN / "vbdt", "demo", *rest, check=False, cwd=ROOT)
    ensure_venv("test,docs")
    if command == "bench":
        ensure_system_tools()
        ensure_broker()  # the exchange benchmark runs over the local RabbitMQ
        code = 0
        for bench in sorted((ROOT / "benchmarks").glob("bench_*.py")):
            log(f"running {bench.name}")
            code |= run(PY, bench, *rest, check=False, cwd=ROOT)
        return code
    ensure_system_tools()
    ensure_broker()
    lock_path = ROOT / ".vbdt-run" / "test.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with open(lock_path, "w") as lock:
        try:  # only when no other `dev.py test` runs here: its vhosts are not stale
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            clean_stale_test_vhosts()
        except BlockingIOError:
            log("another test run is active: leaving its vhosts alone")
        return run(PY, "-m", "pytest", *rest, check=False, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
