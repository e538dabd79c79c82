"""`vbdt validate` on real-world variants (tests/data/variants): lenient accepts with named warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import DATA
from vbdt.cli.main import main

VARIANTS = DATA / "variants"
EXPECTED = {
    "axis-2025-enterprise-sender.edxml": {"EDX107", "EDX206", "EDX305", "EDX510", "EDX902", "EDX907", "EDX909"},
    "sdk-dotnet-status.edxml": {"EDX403", "EDX902"},
    "java-minimal-header.edxml": {"EDX512", "EDX902", "EDX908", "EDX911"},
    "gateway-prefixed-undeclared-xlink.edxml": {"EDX912", "EDX913"},
}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_lenient_validate_accepts_each_file_naming_its_variants(name: str) -> None:
    code, out = run("validate", "--lenient", "--json", str(VARIANTS / name))
    assert code == 0, out
    (report,) = json.loads(out) if out.lstrip().startswith("[") else [json.loads(out)]
    warnings = {f["code"] for f in report["findings"] if f["severity"] == "warning"}
    assert EXPECTED[name] <= warnings
    assert report["valid"] and report["errors"] == 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_strict_validate_refuses_each_file(name: str) -> None:
    code, out = run("validate", str(VARIANTS / name))
    assert code in (1, 2)
    assert any(c in out for c in EXPECTED[name]), out


def test_the_files_are_listed_in_the_readme() -> None:
    readme = (VARIANTS / "README.md").read_text(encoding="utf-8")
    assert all(name in readme for name in EXPECTED)
    assert set(EXPECTED) == {p.name for p in Path(VARIANTS).glob("*.edxml")}
