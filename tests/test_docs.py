from pathlib import Path

import vbdt

ROOT = Path(__file__).resolve().parents[1]


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
