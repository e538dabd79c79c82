"""A DMS vendor's integration tests against vbdt, with vbdt's pytest fixtures.

    pytest examples/vendor_test                       # the embedded exchange
    pytest examples/vendor_test --vbdt-amqp amqp://guest:guest@127.0.0.1:5672/   # a fresh vhost on RabbitMQ
"""

from pathlib import Path

from my_dms import open_dms

from vbdt.testing import assert_status

ME, PEER, OTHER = "000.00.00.H14", "000.00.01.H14", "000.00.00.G22"


def dms(exchange, tmp_path: Path):  # type: ignore[no-untyped-def]
    return open_dms(ME, url=exchange.url(ME), keys=exchange.keys, directory=exchange.directory, ledger=tmp_path / "dms.db")


async def test_a_letter_goes_through_to_completion(vbdt_exchange, vbdt_peer, vbdt_document, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with vbdt_peer(PEER, "accept"), dms(vbdt_exchange, tmp_path) as mine:
        sent = await mine.send(vbdt_document(ME, [PEER]))
        await assert_status(mine.client, sent, PEER, "06", within=15)


async def test_a_rejection_shows_its_reason(vbdt_exchange, vbdt_peer, vbdt_document, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with vbdt_peer(PEER, "reject"), dms(vbdt_exchange, tmp_path) as mine:
        sent = await mine.send(vbdt_document(ME, [PEER]))
        await assert_status(mine.client, sent, PEER, "02", within=15)
        assert "thẩm quyền" in mine.state(sent, PEER)


async def test_garbage_from_a_peer_does_not_stop_my_dms(vbdt_exchange, vbdt_peer, vbdt_document, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with vbdt_peer(PEER, "garbage") as peer, dms(vbdt_exchange, tmp_path) as mine, vbdt_exchange.client(OTHER) as other:
        await mine.send(vbdt_document(ME, [PEER]))
        await peer.wait_for(1, within=15)                    # garbage is on its way to my DMS
        sent = await other.send(vbdt_document(OTHER, [ME]))  # and my DMS still registers what comes next
        await assert_status(other, sent.document_id, ME, "03", within=15)
        assert sent.document_id in mine.register


async def test_my_dms_gives_a_recalled_letter_back(vbdt_exchange, vbdt_document, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with dms(vbdt_exchange, tmp_path), vbdt_exchange.client(OTHER) as other:
        sent = await other.send(vbdt_document(OTHER, [ME]))
        await assert_status(other, sent.document_id, ME, "03", within=15)
        await other.recall(sent.document_id, "Ban hành nhầm")
        await assert_status(other, sent.document_id, ME, "15", within=15)
