"""Shared fixtures. Tests needing an outside tool or the broker skip locally but FAIL under CI=true."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest

import vbdt

DATA = Path(__file__).parent / "data"
INTEROP = DATA / "interop"
INTEROP_FILES = sorted(INTEROP.glob("*.edxml"))
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Path of a command-line tool; skip (or fail under CI) when it is missing."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        message = f"{name} is not installed (python3 dev.py test installs it)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def example_directory() -> vbdt.Directory:
    from vbdt.resources import example_directory_path

    return vbdt.Directory.load(example_directory_path())


@pytest.fixture
def directive(example_directory: vbdt.Directory) -> vbdt.Document:
    from vbdt.demo import build_directive

    return build_directive(example_directory, issued=date(2026, 11, 23))
