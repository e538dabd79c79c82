"""An installed wheel finds its schemas and example directory without the source tree."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_schemas_and_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    if result.returncode != 0 and "hatchling" in result.stderr:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
            capture_output=True, text=True,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("vbdt-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("vbdt/schemas/edxml-document.xsd", "vbdt/schemas/edxml-status.xsd", "vbdt/schemas/edxml-common.xsd",
                   "vbdt/schemas/xmldsig-core-schema.xsd", "vbdt/examples/directory.json", "vbdt/py.typed"):
        assert needed in names
    # import the unpacked wheel from elsewhere: the schemas resolve inside the package
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = (
        "import vbdt, vbdt.edxml.schemas as s, vbdt.edxml.resources as r; "
        "print(s.schema_dir()); print(r.example_directory_path()); "
        "print(len(vbdt.Directory.load(r.example_directory_path())))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(target)) and lines[1].startswith(str(target)) and int(lines[2]) >= 200
