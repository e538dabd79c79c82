"""A transport from a URL, so that switching brokers is configuration.

- ``memory://NAME`` (or ``memory://USER@NAME``): the process-wide embedded broker called ``NAME``
  (:meth:`~vbdt.exchange.memory.MemoryBroker.named`), so two clients of one process share it; the
  user is the OrganId of an agency, or an operator (``guest``, the default, or ``admin``).
- ``amqp://USER:PASSWORD@HOST:PORT/VHOST``: RabbitMQ.
- ``amqps://…``: RabbitMQ over TLS, verified against the system's CAs, or the ``cafile`` given as a
  keyword or query parameter; ``certfile`` (and ``keyfile``) authenticate the client by certificate.

Connecting never declares anything unless ``declare=True``: an agency's user may configure
nothing, and the topology is the operator's (``vbdt broker provision``).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.errors import AccessRefused, UsageError
from vbdt.exchange.transport import DEFAULT_QUEUE_LIMITS, DEFAULT_RECONNECT, QueueLimits, ReconnectPolicy, Transport

__all__ = ["connect", "tls_context"]

_TLS_PARAMETERS = ("cafile", "certfile", "keyfile")


async def connect(url: str, *, declare: bool = False, limits: Limits = DEFAULT_LIMITS,
                  queue_limits: QueueLimits = DEFAULT_QUEUE_LIMITS, reconnect: ReconnectPolicy = DEFAULT_RECONNECT,
                  cafile: str | Path | None = None, certfile: str | Path | None = None, keyfile: str | Path | None = None,
                  timeout: float = 10.0) -> Transport:
    """Open a transport for ``url`` now, failing at once with the reason.

    Errors: :class:`~vbdt.errors.UsageError` for a URL of another scheme or TLS files that cannot
    be loaded; :class:`~vbdt.errors.BrokerUnreachable`, :class:`~vbdt.errors.BrokerAuthError` and
    :class:`~vbdt.errors.BrokerVhostMissing` from the broker. ``limits.max_message_bytes`` bounds
    what is published; ``queue_limits`` the queues declared (``declare=True`` only); ``reconnect``
    how a lost connection is opened again."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return _memory(url, declare=declare)
    if scheme not in ("amqp", "amqps"):
        raise UsageError(f"unknown broker URL scheme {scheme + '://' if scheme else url[:40]!r}: use memory://, amqp:// or amqps://")
    from vbdt.exchange.amqp import AmqpTransport  # aio-pika is loaded only for a real broker

    tls = tls_context(url, cafile=cafile, certfile=certfile, keyfile=keyfile) if scheme == "amqps" else None
    return await AmqpTransport.connect(url, declare=declare, timeout=timeout, max_message_bytes=limits.max_message_bytes,
                                       queue_limits=queue_limits, reconnect=reconnect, tls=tls)


def tls_context(url: str, *, cafile: str | Path | None = None, certfile: str | Path | None = None,
                keyfile: str | Path | None = None) -> ssl.SSLContext:
    """The TLS context of an ``amqps://`` URL: the server verified (system CAs unless ``cafile``),
    with a client certificate when ``certfile`` is given. Keywords win over query parameters."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items() if k in _TLS_PARAMETERS}
    ca = cafile or query.get("cafile")
    cert = certfile or query.get("certfile")
    key = keyfile or query.get("keyfile")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca else None)
        if cert:
            context.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise UsageError(f"TLS files for {urlsplit(url).hostname}: {exc}") from None
    return context


def _memory(url: str, *, declare: bool) -> Transport:
    from vbdt.exchange.memory import MemoryBroker

    parts = urlsplit(url)
    name = unquote(parts.netloc.rsplit("@", 1)[-1] + parts.path)  # as written: hostname would fold the case
    if not name:
        raise UsageError(f"{url!r}: name the embedded broker, as memory://NAME")
    broker = MemoryBroker.named(name)
    user = unquote(parts.username) if parts.username else "guest"
    if declare and user not in broker.admins:
        # As on RabbitMQ: an agency's user may not configure the broker.
        raise AccessRefused(f"access refused: user {user!r} may not declare the topology of memory://{name}")
    return broker.connect(user)
