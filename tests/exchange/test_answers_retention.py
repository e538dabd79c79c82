"""Retention as the library shows it (embedded broker): an item whose body was dropped keeps its record;
its bytes and the package read from them are a documented :class:`vbdt.errors.BodyDropped`."""

from __future__ import annotations

import contextlib
import datetime as dt
from datetime import date
from pathlib import Path

import pytest

import vbdt
from conftest import H14, H14_COMMUNES, _network
from vbdt.cli.demo import compose
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import BodyDropped, LedgerError

C1 = H14_COMMUNES[0]


async def test_an_item_whose_body_was_dropped_keeps_its_record(exchange_pki, example_directory: vbdt.Directory,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    pki, folder = exchange_pki
    with contextlib.ExitStack() as cleanup:
        async for net in _network("memory", cleanup, pki, folder, example_directory, tmp_path):
            province = await net.agency(H14, pump=False)
            commune = await net.agency(C1)
            document = compose(net.directory, H14, [C1], number="71", notation="UBND-VP", type_name="Công văn",
                               subject="Về việc lưu trữ", issued=date.today())
            result = await province.send(document)
            (item,) = await net.pump(commune).take()
            signed = item.body
            async with item:
                await item.accept()
            assert commune.ledger.drop_bodies(dt.datetime.now(VIETNAM_TZ) + dt.timedelta(seconds=1)).bodies == 1

            with pytest.raises(BodyDropped) as caught:
                item.body  # noqa: B018
            assert isinstance(caught.value, LedgerError) and caught.value.document_id == result.document_id
            assert "dropped by retention" in str(caught.value) and caught.value.sender == H14
            with pytest.raises(BodyDropped):  # the package cannot be read again to answer it
                commune.item(H14, result.document_id)
            stored = commune.ledger.incoming(H14, result.document_id, "document")
            assert stored is not None and stored.body is None and stored.size == len(signed)
            assert stored.state == StatusCode.ACCEPTED.value and stored.acknowledged and stored.verdict
            assert [h.event for h in item.history()] == ["03"]
            # a listing of items leaves the dropped one out; the ledger's records keep it
            assert commune.received() == []
            assert [r.document_id for r in commune.ledger.received()] == [result.document_id]
