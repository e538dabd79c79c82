import json

import pytest

import vbdt
from vbdt import AdminLevel, Directory


def test_example_directory_shape(example_directory: Directory) -> None:
    assert len(example_directory) >= 200
    counts = {level: len(example_directory.of_level(level)) for level in AdminLevel}
    assert counts[AdminLevel.PROVINCE] == 2 and counts[AdminLevel.DISTRICT] == 8
    # Thái Bình has districts; Cao Bằng (2025) has communes directly under the province
    assert {a.level for a in example_directory.children("000.00.00.H54")} == {AdminLevel.DISTRICT}
    assert {a.level for a in example_directory.children("000.00.00.H14")} == {AdminLevel.COMMUNE}
    assert example_directory.get("000.00.00.G22").name == "Văn phòng Chính phủ"


def test_queries(example_directory: Directory) -> None:
    district = example_directory.children("000.00.00.H54")[0]
    communes = example_directory.of_level(AdminLevel.COMMUNE, under=district.organ_id)
    assert communes and all(c.parent == district.organ_id for c in communes)
    commune = communes[0]
    assert [a.organ_id for a in example_directory.ancestors(commune.organ_id)] == [district.organ_id, "000.00.00.H54"]
    assert example_directory.parent("000.00.00.H54") is None
    assert len(example_directory.descendants("000.00.00.H54")) == 8 + 242
    org = example_directory.organization(commune.organ_id)
    assert org.organization_in_charge == district.name


def test_selectors(example_directory: Directory) -> None:
    assert len(example_directory.select("000.00.00.H54/**:commune")) == 242
    assert len(example_directory.select("000.00.00.H54/*")) == 8
    assert len(example_directory.select("000.00.00.H54/*:commune")) == 0
    assert len(example_directory.select("**:province")) == 2
    assert len(example_directory.select("**:tinh", "000.00.00.H14")) == 2  # union, each once
    assert len(example_directory.select("**")) == len(example_directory)
    district = example_directory.children("000.00.00.H54")[0].organ_id
    assert example_directory.select(f"{district}/**:xa") == example_directory.of_level(AdminLevel.COMMUNE, district)


@pytest.mark.parametrize(
    ("selector", "match"),
    [
        ("000.00.00.H54:commune", "needs /\\* or /\\*\\*"),
        ("**:village", "unknown level"),
        ("28.22.H17/*", "four dot-separated groups"),
        ("**/*", "invalid selector"),
        ("", "invalid selector"),
    ],
)
def test_bad_selectors(example_directory: Directory, selector: str, match: str) -> None:
    with pytest.raises(vbdt.InvalidSelector, match=match):
        example_directory.select(selector)


def test_unknown_agency(example_directory: Directory) -> None:
    with pytest.raises(vbdt.UnknownAgency, match="000.00.00.H99"):
        example_directory.select("000.00.00.H99/**")


def test_national_directory_real_size() -> None:
    national = vbdt.national_directory()
    assert len(national.select("**:province")) == 34
    assert len(national.select("**:commune")) == 3321
    hanoi = national.get("000.00.00.H01")
    assert hanoi.name == "UBND Thành phố Hà Nội"
    assert max(len(national.children(p.organ_id)) for p in national.select("**:province")) > 99  # alphanumeric groups


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"organ_id": "000.00.00.H54", "name": "a", "level": "province"}] * 2, "appears twice"),
        ([{"organ_id": "000.00.01.H54", "name": "a", "level": "district", "parent": "000.00.00.H54"}], "not in the directory"),
        ([{"organ_id": "000.00.00.H54", "name": "a", "level": "commune"},
          {"organ_id": "000.00.01.H54", "name": "b", "level": "province", "parent": "000.00.00.H54"}], "cannot sit under"),
        ([{"organ_id": "bad", "name": "a", "level": "province"}], "agency #1"),
        ([{"organ_id": "000.00.00.H54", "name": "a", "level": "galaxy"}], "agency #1"),
        (["not an object"], "not an object"),
    ],
)
def test_bad_directory_data(rows: list, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(vbdt.DirectoryError, match=match):
        Directory.from_rows(rows)


def test_load_json_csv_and_bad_files(tmp_path, example_directory: Directory) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "d.json"
    path.write_text(example_directory.to_json(), encoding="utf-8")
    assert len(Directory.load(path)) == len(example_directory)
    csv_path = tmp_path / "d.csv"
    csv_path.write_text(
        "organ_id,name,level,parent\n000.00.00.H54,UBND Tỉnh Thái Bình,province,\n000.00.01.H54,UBND TP Thái Bình,district,000.00.00.H54\n",
        encoding="utf-8",
    )
    assert [a.name for a in Directory.load(csv_path).children("000.00.00.H54")] == ["UBND TP Thái Bình"]
    (tmp_path / "bad.json").write_text("{nope", encoding="utf-8")
    with pytest.raises(vbdt.DirectoryError, match="not JSON"):
        Directory.load(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps([1, 2]), encoding="utf-8")
    with pytest.raises(vbdt.DirectoryError, match="agencies"):
        Directory.load(tmp_path / "list.json")
    with pytest.raises(vbdt.DirectoryError, match="no such"):
        Directory.load(tmp_path / "missing.json")


def test_pre2025_shape_directory_has_the_size_and_four_levels_of_the_old_country() -> None:
    from vbdt.directory import pre2025_shape_directory
    from vbdt.directory.generated import PRE2025_COMMUNES, PRE2025_DISTRICTS, PRE2025_PROVINCES

    d = pre2025_shape_directory()
    assert len(d.select("**:province")) == PRE2025_PROVINCES == 63
    assert len(d.select("**:district")) == PRE2025_DISTRICTS == 705
    assert len(d.select("**:commune")) == PRE2025_COMMUNES == 10_599
    commune = d.select("000.00.00.H63/**:commune")[-1]
    district = d.parent(commune.organ_id)
    assert district is not None and district.level.value == "district"
    assert d.parent(district.organ_id).organ_id == "000.00.00.H63"  # type: ignore[union-attr]
    assert pre2025_shape_directory(2, 3, 7).select("**") == pre2025_shape_directory(2, 3, 7).select("**")


def test_pre2025_shape_directory_refuses_impossible_shapes() -> None:
    from vbdt.directory import pre2025_shape_directory

    with pytest.raises(vbdt.UsageError):
        pre2025_shape_directory(5, 3, 10)
