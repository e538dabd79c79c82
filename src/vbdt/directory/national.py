"""The real administrative map of Vietnam since 1 July 2025, from the ``vietnam-provinces`` package."""

from __future__ import annotations

from typing import Any

from vbdt.directory.agencies import Directory
from vbdt.errors import DirectoryError, VbdtError

__all__ = ["national_directory", "two_chars"]


# The 34 provincial People's Committees get level-1 identifiers H + two-digit statistical code,
# and their communes level-2 groups numbered in statistical-code order. These are NOT the
# OrganIds the Ministry assigned (that table is not published in machine-readable form); they
# give a directory of the real size, names and shape for routing and load tests.
def national_directory() -> Directory:
    """Vietnam since 1 July 2025: the Government Office, 34 provinces and 3,321 communes."""
    try:
        from vietnam_provinces import Province, Ward
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise VbdtError("the national directory needs the vietnam-provinces package") from exc
    rows: list[dict[str, Any]] = [
        {"organ_id": "000.00.00.G22", "name": "Văn phòng Chính phủ", "level": "central", "short_name": "VPCP"}
    ]
    wards_by_province: dict[int, list[Any]] = {}
    for ward in Ward.iter_all():
        wards_by_province.setdefault(int(ward.province_code), []).append(ward)
    for province in sorted(Province.iter_all(), key=lambda p: int(p.code)):
        code = int(province.code)
        province_id = f"000.00.00.H{code:02d}"
        rows.append(
            {
                "organ_id": province_id,
                # The package writes "Cao Bằng" but "Thành phố Hà Nội": say "Tỉnh" where it is one.
                "name": f"UBND {'Tỉnh ' if province.division_type.value == 'tỉnh' else ''}{province.name}",
                "level": "province",
                "short_name": "UBND",
                "statistical_code": f"{code:02d}",
            }
        )
        wards = sorted(wards_by_province.get(code, []), key=lambda w: int(w.code))
        for index, ward in enumerate(wards, 1):
            rows.append(
                {
                    "organ_id": f"000.00.{two_chars(index)}.H{code:02d}",
                    "name": f"UBND {ward.name}",
                    "level": "commune",
                    "parent": province_id,
                    "short_name": "UBND",
                    "statistical_code": f"{int(ward.code):05d}",
                }
            )
    return Directory.from_rows(rows, name="vietnam-2025")


def two_chars(index: int) -> str:
    """01..99, then A0..ZZ: a two-character group for up to 1,035 units (Decision 20/2020 allows A-Z)."""
    if index < 100:
        return f"{index:02d}"
    index -= 100
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    first, second = divmod(index, 36)
    if first >= 26:
        raise DirectoryError("more than 1,035 units at one level cannot be numbered in two characters")
    return alphabet[10 + first] + alphabet[second]
