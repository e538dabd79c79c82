import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbdt import InvalidOrganId, OrganId, VbdtError


@pytest.mark.parametrize(
    ("value", "level", "parent"),
    [
        ("000.00.00.H54", 1, None),
        ("000.00.18.G12", 2, "000.00.00.G12"),
        ("000.05.18.H54", 3, "000.00.18.H54"),
        ("001.05.18.H54", 4, "000.05.18.H54"),
        ("000.00.BW.H79", 2, "000.00.00.H79"),
    ],
)
def test_levels_and_parents(value: str, level: int, parent: str | None) -> None:
    organ_id = OrganId(value)
    assert organ_id == value
    assert organ_id.level == level
    assert organ_id.parent == parent
    assert organ_id.is_standard


def test_ancestors_and_root() -> None:
    organ_id = OrganId("001.05.18.H54")
    assert organ_id.ancestors() == ["000.05.18.H54", "000.00.18.H54", "000.00.00.H54"]
    assert organ_id.root == "000.00.00.H54"
    assert organ_id.is_under("000.00.18.H54")
    assert not organ_id.is_under("000.00.00.G12")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("28.22.H17", "four dot-separated groups"),
        ("000.00.00.h54", "level-1 group 'h54'"),
        ("000.05.00.H54", "level-2 group is zero under a unit at level 3"),
        ("0000.00.00.H54", "level-4 group"),
        ("000.00.00.154", "capital letter"),
        ("", "four dot-separated groups"),
    ],
)
def test_malformed_ids_say_why(value: str, reason: str) -> None:
    with pytest.raises(InvalidOrganId) as info:
        OrganId(value)
    assert reason in str(info.value)
    assert isinstance(info.value, VbdtError)


def test_lenient_accepts_decision_20_syntax_without_a_level() -> None:
    organ_id = OrganId.lenient("28.22.H17")
    assert not organ_id.is_standard
    with pytest.raises(InvalidOrganId, match="no level"):
        _ = organ_id.level
    with pytest.raises(InvalidOrganId):
        OrganId.lenient("not an id")
    with pytest.raises(InvalidOrganId):
        OrganId.lenient("A" * 36)


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidOrganId):
        OrganId(42)  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_parsing_never_raises_anything_else(text: str) -> None:
    try:
        organ_id = OrganId(text)
    except InvalidOrganId:
        return
    # a parsed id always knows its level, and its parent is one level up
    parent = organ_id.parent
    assert parent is None or parent.level == organ_id.level - 1


@pytest.mark.parametrize("suffix", ["\n", " ", "\t", "\r\n", "\u00a0", "\u200b"])
def test_an_id_matches_in_full_never_with_trailing_whitespace(suffix: str) -> None:
    # a regex anchored with `$` lets "…H54\n" pass as "…H54": ids must match in full
    with pytest.raises(InvalidOrganId):
        OrganId("000.00.00.H54" + suffix)
    with pytest.raises(InvalidOrganId):
        OrganId.lenient("000.00.00.H54" + suffix)
