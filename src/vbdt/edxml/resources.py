"""Files vbdt ships: the XSD schemas and the example agency directory.

In the source tree they live at the top (``schemas/``, ``examples/``); in a wheel they are copied
into the package (``vbdt/schemas``, ``vbdt/examples``). These functions find either.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from vbdt.errors import VbdtError

__all__ = ["example_directory_path", "shipped_dir"]


def shipped_dir(name: str) -> Path:
    """The folder ``name`` (``schemas`` or ``examples``), installed or in the source tree."""
    packaged = resources.files("vbdt") / name
    if packaged.is_dir():
        return Path(str(packaged))
    source_tree = Path(__file__).resolve().parents[3] / name
    if source_tree.is_dir():
        return source_tree
    raise VbdtError(f"the {name} folder is missing from this installation of vbdt")


def example_directory_path() -> Path:
    """The example directory (315 agencies: central, Thái Bình with districts, Cao Bằng)."""
    return shipped_dir("examples") / "directory.json"
