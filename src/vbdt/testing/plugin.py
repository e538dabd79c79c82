"""pytest fixtures for testing a system against vbdt: an exchange, keys, documents and a peer.

Registered through the ``pytest11`` entry point, so installing vbdt is enough; without it, add
``-p vbdt.testing.plugin`` (or ``pytest_plugins = ["vbdt.testing.plugin"]`` in a conftest). The
fixtures are synchronous and hand out async context managers, so they work under any asyncio
test runner (pytest-asyncio, anyio)::

    from vbdt.testing import assert_status

    async def test_my_dms_gets_a_document_completed(vbdt_exchange, vbdt_document):
        async with vbdt_exchange.peer("000.00.01.H14", "accept"), vbdt_exchange.client("000.00.00.H14") as me:
            sent = await me.send(vbdt_document("000.00.00.H14", ["000.00.01.H14"]))
            await assert_status(me, sent.document_id, "000.00.01.H14", "06", within=10)

==================  =========================================================================================
fixture             what it gives
==================  =========================================================================================
``vbdt_directory``  the agencies of the tests (session): :func:`~vbdt.testing.exchange.small_directory`;
                    override it to use your own
``vbdt_pki``        a TEST-ONLY PKI for them, written to a folder (session): :class:`~vbdt.testing.exchange.PkiFolder`
``vbdt_exchange``   a :class:`~vbdt.testing.exchange.TestExchange`: the embedded broker, or a fresh vhost
                    on RabbitMQ with ``--vbdt-amqp URL`` (an operator's URL; or ``VBDT_TEST_AMQP_URL``)
``vbdt_document``   ``vbdt_document(sender, recipients, **fields)``: a valid document (:func:`~vbdt.testing.documents.make_document`)
``vbdt_peer``       ``vbdt_peer(organ_id, behaviour)``: an async context manager running a :class:`~vbdt.testing.peer.Peer`
==================  =========================================================================================

This module imports nothing of vbdt until a fixture is used: loading it costs no more than ``import vbdt``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from vbdt.directory.agencies import Directory
    from vbdt.edxml.model import Document
    from vbdt.testing.exchange import PkiFolder, TestExchange
    from vbdt.testing.peer import Peer

__all__ = ["pytest_addoption", "vbdt_directory", "vbdt_document", "vbdt_exchange", "vbdt_peer", "vbdt_pki"]

AMQP_ENV = "VBDT_TEST_AMQP_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--vbdt-amqp URL``: run ``vbdt_exchange`` on this RabbitMQ (an operator's URL) instead of the embedded broker."""
    parser.getgroup("vbdt").addoption(
        "--vbdt-amqp", dest="vbdt_amqp", default=None, metavar="URL",
        help=f"RabbitMQ operator URL for the vbdt_exchange fixture (default: ${AMQP_ENV}, else the embedded broker)")


@pytest.fixture(scope="session")
def vbdt_directory() -> Directory:
    """The agencies of the tests: the four levels, both shapes of a province (override for your own)."""
    from vbdt.testing.exchange import small_directory

    return small_directory()


@pytest.fixture(scope="session")
def vbdt_pki(vbdt_directory: Directory, tmp_path_factory: pytest.TempPathFactory) -> PkiFolder:
    """A TEST-ONLY key and certificate for every agency of ``vbdt_directory``, and a signing person's, in a folder."""
    from vbdt.testing.exchange import PkiFolder

    return PkiFolder.create(tmp_path_factory.mktemp("vbdt-pki"), vbdt_directory)


@pytest.fixture
def vbdt_exchange(request: pytest.FixtureRequest, vbdt_directory: Directory, vbdt_pki: PkiFolder,
                  tmp_path: Path) -> Iterator[TestExchange]:
    """The agencies of ``vbdt_directory`` on a broker of their own for this test, each as its own broker user."""
    from vbdt.testing.exchange import TestExchange

    url = request.config.getoption("vbdt_amqp") or os.environ.get(AMQP_ENV)
    folder = tmp_path / "vbdt"
    exchange = (TestExchange.rabbitmq(folder, url, vbdt_directory, keys=vbdt_pki) if url
                else TestExchange.embedded(folder, vbdt_directory, keys=vbdt_pki))
    try:
        yield exchange
    finally:
        exchange.close()


@pytest.fixture
def vbdt_document(vbdt_directory: Directory) -> Callable[..., Document]:
    """``vbdt_document(sender, recipients, **fields)``: a valid document with its own number and a PDF."""
    from vbdt.testing.documents import make_document

    def document(sender: str, recipients: list[str], **fields: Any) -> Document:
        return make_document(vbdt_directory, sender, recipients, **fields)

    return document


@pytest.fixture
def vbdt_peer(vbdt_exchange: TestExchange) -> Callable[..., AbstractAsyncContextManager[Peer]]:
    """``vbdt_peer(organ_id, behaviour="accept", delay=None)``: ``async with`` it to have the agency answer."""
    return vbdt_exchange.peer
