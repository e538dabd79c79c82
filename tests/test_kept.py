"""vbdt.kept: the bounded caches every kept value goes through (certificates, keys, verdicts, stores)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbdt.kept import Kept, KeptFor

_OPS = st.lists(st.tuples(st.sampled_from(["get", "put"]), st.integers(0, 12), st.integers(0, 40)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(ops=_OPS, max_entries=st.integers(0, 6), max_bytes=st.integers(0, 80))
def test_kept_is_a_least_recently_used_map_within_both_bounds(ops: list[tuple[str, int, int]], max_entries: int,
                                                               max_bytes: int) -> None:
    kept: Kept[int, int] = Kept(max_entries, max_bytes=max_bytes, size=lambda _key, value: value)
    model: OrderedDict[int, int] = OrderedDict()  # the reference: evict the oldest while over a bound
    for op, key, value in ops:
        if op == "get":
            expected = model.get(key)
            if key in model:
                model.move_to_end(key)
            assert kept.get(key) == expected
        else:
            model.pop(key, None)
            model[key] = value
            while model and (len(model) > max_entries or sum(model.values()) > max_bytes):
                model.popitem(last=False)
            kept.put(key, value)
        assert kept.keys() == list(model) and kept.held_bytes == sum(model.values()) <= max_bytes
        assert len(kept) == len(model) <= max_entries


def test_a_kept_none_is_told_from_an_absent_key_by_the_default() -> None:
    absent = object()
    kept: Kept[str, object] = Kept(4)
    kept.put("none", None)
    assert kept.get("none", absent) is None and kept.get("other", absent) is absent and "none" in kept
    kept.clear()
    assert len(kept) == 0 and kept.get("none", absent) is absent


def test_bytes_need_a_size() -> None:
    with pytest.raises(ValueError):
        Kept(4, max_bytes=10)


def test_kept_for_is_by_identity_and_holds_its_objects() -> None:
    kept: KeptFor[str] = KeptFor(2)
    a, b = [1], [1]  # equal, not the same
    kept.put(a, "a")
    assert kept.get(a) == "a" and kept.get(b) is None
    kept.put(b, "b")
    kept.put(object(), "c")  # a temporary: held while kept, so its id is not reused meanwhile
    assert kept.get(a) is None and kept.get(b) == "b" and len(kept) == 2
    assert kept.get(object()) is None


def test_threads_sharing_one_keep_it_within_its_bound() -> None:
    kept: Kept[int, bytes] = Kept(100, max_bytes=5_000, size=lambda _key, value: len(value))
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(2_000):
                kept.put((offset * 7 + n) % 300, b"x" * (n % 97))
                kept.get(n % 300)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(kept) <= 100 and kept.held_bytes <= 5_000
    assert kept.held_bytes == sum(len(kept.get(k) or b"") for k in kept.keys())
