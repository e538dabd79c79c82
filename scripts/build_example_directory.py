"""Build examples/directory.json: a realistic directory of 300-odd agencies with real names.

Run once by a developer (the output is committed): ``python scripts/build_example_directory.py``.

- Central: the Government Office and a few ministries.
- Thái Bình (000.00.00.H54, the province the edXML reference uses as its example) in the
  pre-July-2025 three-level shape, with its 8 districts and 242 communes, real names from
  ``vietnam-provinces==0.6.0`` (the last release with districts), fetched with pip into a temp dir.
- Cao Bằng (000.00.00.H14, as in the interop samples) in the two-level shape in force since
  1 July 2025, with its 56 communes from the installed ``vietnam-provinces``.

Identifiers of districts and communes are numbered in statistical-code order under their
province; only G22, G12, H54 and H14 are identifiers documented in the reference or the samples.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from vietnam_provinces import Province, Ward

ROOT = Path(__file__).resolve().parents[1]

CENTRAL = [
    ("000.00.00.G22", "Văn phòng Chính phủ", "VPCP"),
    ("000.00.00.G12", "Bộ Tài chính", "BTC"),
    ("000.00.00.G09", "Bộ Nội vụ", "BNV"),
    ("000.00.00.G19", "Bộ Tư pháp", "BTP"),
    ("000.00.00.G14", "Bộ Khoa học và Công nghệ", "BKHCN"),
    ("000.00.00.G11", "Bộ Xây dựng", "BXD"),
]


def legacy_thai_binh() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, "vietnam-provinces==0.6.0"],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            data = json.loads(z.read("vietnam_provinces/data/nested-divisions.json"))
    return next(p for p in data if p["name"] == "Tỉnh Thái Bình")


def main() -> None:
    rows: list[dict] = []
    for organ_id, name, short in CENTRAL:
        rows.append({"organ_id": organ_id, "name": name, "level": "central", "short_name": short})
    rows.append({"organ_id": "000.00.18.G12", "name": "Kho bạc Nhà nước", "level": "central",
                 "parent": "000.00.00.G12", "short_name": "KBNN"})

    tb = legacy_thai_binh()
    tb_id = "000.00.00.H54"
    rows.append({"organ_id": tb_id, "name": f"UBND {tb['name']}", "level": "province",
                 "short_name": "UBND", "statistical_code": f"{tb['code']:02d}"})
    for d_index, district in enumerate(sorted(tb["districts"], key=lambda d: d["code"]), 1):
        d_id = f"000.00.{d_index:02d}.H54"
        rows.append({"organ_id": d_id, "name": f"UBND {district['name']}", "level": "district",
                     "parent": tb_id, "short_name": "UBND", "statistical_code": f"{district['code']:03d}"})
        for w_index, ward in enumerate(sorted(district["wards"], key=lambda w: w["code"]), 1):
            rows.append({"organ_id": f"000.{w_index:02d}.{d_index:02d}.H54", "name": f"UBND {ward['name']}",
                         "level": "commune", "parent": d_id, "short_name": "UBND",
                         "statistical_code": f"{ward['code']:05d}"})

    cb = next(p for p in Province.iter_all() if p.name == "Cao Bằng")
    cb_id = "000.00.00.H14"
    rows.append({"organ_id": cb_id, "name": f"UBND Tỉnh {cb.name}", "level": "province",
                 "short_name": "UBND", "statistical_code": f"{int(cb.code):02d}"})
    wards = sorted((w for w in Ward.iter_all() if w.province_code == cb.code), key=lambda w: int(w.code))
    for index, ward in enumerate(wards, 1):
        rows.append({"organ_id": f"000.00.{index:02d}.H14", "name": f"UBND {ward.name}", "level": "commune",
                     "parent": cb_id, "short_name": "UBND", "statistical_code": f"{int(ward.code):05d}"})

    out = {
        "name": "vbdt example directory",
        "note": "Real names (vietnam-provinces); Thái Bình in the pre-2025 district shape, Cao Bằng in the "
                "2025 two-level shape. Identifiers below province level are numbered by vbdt.",
        "agencies": rows,
    }
    target = ROOT / "examples" / "directory.json"
    target.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{target}: {len(rows)} agencies")


if __name__ == "__main__":
    main()
