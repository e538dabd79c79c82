"""A RabbitMQ node of the test's own (own node name, ports and data dir): for tests that stop or
restart a broker, which must never touch the shared one at 127.0.0.1:5672."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


TEST_PORTS = range(15700, 16700, 2)
"""Below the ephemeral range: RabbitMQ's listener collided with ephemeral ports in that range."""


def _free_port(ports: range = TEST_PORTS) -> int:
    for port in ports:
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("0.0.0.0", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for a test broker")


class OwnBroker:
    """Start, stop and restart a private RabbitMQ node (data survives a restart)."""

    def __init__(self, base: Path, ports: range = TEST_PORTS) -> None:
        """``ports``: where to look for a free pair (AMQP, distribution), so that nodes started
        side by side by different suites or benchmarks do not race for the same one."""
        self.base = base
        self.port = _free_port(ports)
        self.node = f"vbdt-test-{os.getpid()}-{self.port}@localhost"
        base.mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        (base / "enabled_plugins").write_text("[].\n")
        (base / "env.conf").write_text("")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.port + 1),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "env.conf"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return Path(SERVER).exists() and Path(CTL).exists()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CTL, "-n", self.node, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        with open(self.base / "server.out", "ab") as log:  # the server writes to its own copy of the handle
            self.process = subprocess.Popen([SERVER], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.ctl("await_startup", "--timeout", "5").returncode == 0:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"test broker {self.node} did not start; see {self.base}")

    def stop(self) -> None:
        """Stop the node; when it does not stop in time (a node busy with thousands of queues), kill
        its Erlang VM by the pid it wrote: a node left running would load the machine for good."""
        try:
            self.ctl("stop")
        except subprocess.TimeoutExpired:
            pass
        if self.process is not None:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        try:
            pid = int((self.base / "pid").read_text().strip())
            mine = f"RABBITMQ_NODENAME={self.node}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return  # no pid written, or no such process any more
        if mine:  # never a process that reused the pid
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()
