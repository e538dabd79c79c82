"""Routing keys show the hierarchy and round-trip to the OrganId."""

from hypothesis import given
from hypothesis import strategies as st

from vbdt.exchange.routing import inbox_queue, organ_id_for_key, routing_key


def test_keys_show_the_hierarchy() -> None:
    assert routing_key("000.00.00.H54") == "H54"
    assert routing_key("000.00.01.H54") == "H54.01"
    assert routing_key("000.02.01.H54") == "H54.01.02"
    assert routing_key("000.00.18.G12") == "G12.18"
    assert routing_key("28.22.H17") == "x.H17.22.28"  # a Decision-20 id that is not four groups
    assert inbox_queue("000.00.00.H54") == "vbdt.inbox.000.00.00.H54"


def test_every_example_agency_round_trips(example_directory) -> None:  # type: ignore[no-untyped-def]
    keys = {routing_key(str(a.organ_id)) for a in example_directory}
    assert len(keys) == len(example_directory)
    for agency in example_directory:
        assert organ_id_for_key(routing_key(str(agency.organ_id))) == agency.organ_id


group = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)


@given(group.filter(lambda g: g != "00"), group, st.text(alphabet="0123456789", min_size=2, max_size=2))
def test_round_trip_property(level2: str, level3: str, province: str) -> None:
    organ_id = f"000.{level3}.{level2}.H{province}" if level3 != "00" else f"000.00.{level2}.H{province}"
    assert organ_id_for_key(routing_key(organ_id)) == organ_id
