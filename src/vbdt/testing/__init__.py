"""A conformance kit for the systems that exchange documents with vbdt: a test counterpart
(:class:`~vbdt.testing.peer.Peer`, ``vbdt peer``), an exchange for tests over a small directory
(:class:`~vbdt.testing.exchange.TestExchange`), documents (:func:`~vbdt.testing.documents.make_document`),
an assertion on delivery states (:func:`~vbdt.testing.assertions.assert_status`), and the pytest
fixtures of :mod:`vbdt.testing.plugin`. Everything here is for tests: the keys are TEST-ONLY.

The names are imported on first use, so that loading the pytest plugin costs nothing more than
``import vbdt``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vbdt.testing.assertions import assert_status
    from vbdt.testing.documents import make_document
    from vbdt.testing.exchange import SMALL_DIRECTORY, PkiFolder, TestExchange, small_directory
    from vbdt.testing.peer import Behaviour, Peer, PeerAction

__all__ = ["SMALL_DIRECTORY", "Behaviour", "Peer", "PeerAction", "PkiFolder", "TestExchange", "assert_status",
           "make_document", "small_directory"]

_HOME = {
    "assert_status": "assertions", "make_document": "documents", "SMALL_DIRECTORY": "exchange", "PkiFolder": "exchange",
    "TestExchange": "exchange", "small_directory": "exchange", "Behaviour": "peer", "Peer": "peer", "PeerAction": "peer",
}


def __getattr__(name: str) -> Any:
    """The public names, imported from their module on first use (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'vbdt.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vbdt.testing.{home}"), name)
    globals()[name] = value
    return value
