"""The public API of ``vbdt/__init__.py``: every name resolves, the lazy table matches what type checkers
see, and ``import vbdt`` stays cheap."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import vbdt

INIT = Path(vbdt.__file__)


def _type_checking_imports() -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:`` (what mypy and readers see)."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    return {alias.name: str(node.module) for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}


def test_the_lazy_table_is_what_type_checkers_see() -> None:
    assert vbdt._EXPORTS == _type_checking_imports()
    assert set(vbdt.__all__) == {*vbdt._EXPORTS, "__version__"}
    assert len(vbdt.__all__) == len(set(vbdt.__all__))


@pytest.mark.parametrize("name", sorted(vbdt._EXPORTS))
def test_every_public_name_comes_from_its_module(name: str) -> None:
    module = __import__(vbdt._EXPORTS[name], fromlist=[name])
    assert getattr(vbdt, name) is getattr(module, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        vbdt.Nope  # noqa: B018
    assert "AgencyClient" in dir(vbdt)


def test_import_vbdt_loads_no_heavy_dependency() -> None:
    """A ``--help``, the pytest plugin or ``from vbdt.errors import ...`` must not pay for pyHanko and aio-pika."""
    code = ("import sys, vbdt, vbdt.errors, vbdt.testing.plugin; "
            "print(sorted(m for m in ('pyhanko', 'aio_pika', 'aiohttp', 'signxml', 'lxml', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    star = subprocess.run([sys.executable, "-c", "from vbdt import *; print(AgencyClient.__module__)"],
                          capture_output=True, text=True, check=True).stdout
    assert star.strip() == "vbdt.exchange.client"
