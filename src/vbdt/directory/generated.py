"""A generated directory of the pre-2025 size and four-level shape, for load tests and benchmarks.

Before 1 July 2025 Vietnam had 63 provinces, 705 district-level units and 10,599 commune-level
units. :func:`pre2025_shape_directory` builds a directory of exactly that size and shape (central
government → province → district → commune) with **generated** names and OrganIds: it is not the
real map (the real one since 2025 is :func:`vbdt.directory.national_directory`), only a stand-in of
the right size for "one directive to every commune of the country" before the reform.
"""

from __future__ import annotations

from typing import Any

from vbdt.directory.agencies import Directory
from vbdt.directory.national import two_chars
from vbdt.errors import UsageError

__all__ = ["PRE2025_COMMUNES", "PRE2025_DISTRICTS", "PRE2025_PROVINCES", "pre2025_shape_directory"]

PRE2025_PROVINCES = 63
PRE2025_DISTRICTS = 705
PRE2025_COMMUNES = 10_599


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal whole numbers (the first ones one larger)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def pre2025_shape_directory(
    provinces: int = PRE2025_PROVINCES, districts: int = PRE2025_DISTRICTS, communes: int = PRE2025_COMMUNES
) -> Directory:
    """A four-level directory of the given size (default: the pre-2025 country), names generated.

    Province ``i`` is ``000.00.00.H<ii>``, its districts
    ``000.00.<dd>.H<ii>`` and their communes ``000.<cc>.<dd>.H<ii>``; groups past 99 use the letters
    Decision 20/2020 allows. Deterministic: the same arguments give the same directory.
    """
    if not (0 < provinces <= 99 and provinces <= districts <= communes):
        raise UsageError("need 1-99 provinces, at least one district per province and one commune per district")
    rows: list[dict[str, Any]] = [
        {"organ_id": "000.00.00.G22", "name": "Văn phòng Chính phủ", "level": "central", "short_name": "VPCP"}
    ]
    district_counts = _spread(districts, provinces)
    commune_counts = iter(_spread(communes, districts))
    for p, n_districts in enumerate(district_counts, 1):
        province_id = f"000.00.00.H{p:02d}"
        rows.append({"organ_id": province_id, "name": f"UBND Tỉnh mẫu {p:02d}", "level": "province", "short_name": "UBND"})
        for d in range(1, n_districts + 1):
            district_id = f"000.00.{two_chars(d)}.H{p:02d}"
            rows.append({"organ_id": district_id, "name": f"UBND Huyện mẫu {p:02d}.{d:02d}", "level": "district",
                         "parent": province_id, "short_name": "UBND"})
            for c in range(1, next(commune_counts) + 1):
                rows.append({"organ_id": f"000.{two_chars(c)}.{two_chars(d)}.H{p:02d}",
                             "name": f"UBND Xã mẫu {p:02d}.{d:02d}.{c:02d}", "level": "commune",
                             "parent": district_id, "short_name": "UBND"})
    return Directory.from_rows(rows, name=f"generated-{provinces}-{districts}-{communes}")
