"""``python -m vbdt``: the command line, as the ``vbdt`` script."""

from vbdt.cli import main

main()
