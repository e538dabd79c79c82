from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vbdt

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide"
# A Python block the tests do not run is marked, on the line before it, with `<!-- not run: why -->`.
_BLOCK = re.compile(r"(?P<mark><!-- not run: [^>]+-->\n)?```python\n(?P<code>.*?)```", re.S)


def test_findings_doc_lists_every_code() -> None:
    text = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    for code, meaning in vbdt.CODES.items():
        assert f"| {code} | {meaning} |" in text


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n", 2)[1]
    assert "python3 dev.py demo" in head and "python3 dev.py test" in head


def test_public_names_have_docstrings() -> None:
    missing = [n for n in vbdt.__all__ if not n.startswith("_") and not isinstance(getattr(vbdt, n), (str, dict, tuple))
               and callable(getattr(vbdt, n)) and not (getattr(vbdt, n).__doc__ or "").strip()]
    assert not missing, missing


def _blocks(page: Path) -> list[tuple[bool, str]]:
    return [(m["mark"] is None, m["code"]) for m in _BLOCK.finditer(page.read_text(encoding="utf-8"))]


PAGES = [*sorted(GUIDE.glob("*.md")), ROOT / "docs" / "bulk.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_guide_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of a guide page runs, in order, in one namespace (as a reader would paste them)."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"guide_{page.stem}"}
    for number, (runnable, code) in enumerate(_blocks(page), 1):
        if not runnable:
            compile(code, f"{page.name}#{number}", "exec")  # still valid Python
            continue
        exec(compile(code, f"{page.name}#{number}", "exec"), namespace)


def test_unrun_blocks_are_few() -> None:
    blocks = [runnable for page in PAGES for runnable, _ in _blocks(page)]
    assert blocks and blocks.count(False) <= max(3, len(blocks) // 5), "mark few blocks `not run`"


def test_site_builds_strictly(tmp_path: Path) -> None:
    """mkdocs build --strict: every warning (a broken link, a docstring mkdocstrings cannot render) fails."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "guide" / "api" / "index.html").read_text(encoding="utf-8").count("doc-heading") > 10
