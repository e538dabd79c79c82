"""The ``vbdt`` command line: one module per command group, the demo beside them."""

from vbdt.cli.main import main

__all__ = ["main"]
