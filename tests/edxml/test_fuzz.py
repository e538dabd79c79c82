"""Generated and mutated documents never raise anything but a vbdt error."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vbdt
from conftest import INTEROP

SEEDS = [(INTEROP / n).read_bytes() for n in ("new-document-small.edxml", "status-02-rejected.edxml")]


def check(data: bytes) -> None:
    try:
        report = vbdt.validate(data, lenient=True)
    except vbdt.VbdtError:
        return
    for finding in report.findings:
        assert finding.code in vbdt.CODES
    if report.package is not None:
        vbdt.write(report.package)  # whatever was read can be written


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_documents(seed: bytes, data: st.DataObject) -> None:
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "splice"]))
        pos = data.draw(st.integers(0, max(0, len(mutated) - 1)))
        if op == "flip" and mutated:
            mutated[pos] = data.draw(st.integers(0, 255))
        elif op == "delete":
            del mutated[pos : pos + data.draw(st.integers(1, 40))]
        elif op == "insert":
            mutated[pos:pos] = data.draw(st.sampled_from([b"<", b">", b"&", b"</edXML:To>", b"<edXML:To>", b"]]>", b"\x00", b"&amp;", b"<!--", b"\xc3"]))
        else:
            start = data.draw(st.integers(0, max(0, len(seed) - 1)))
            mutated[pos:pos] = seed[start : start + data.draw(st.integers(1, 200))]
    check(bytes(mutated))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_element_text_mutations(text: str) -> None:
    seed = SEEDS[0].decode()
    for tag in ("OrganId", "PromulgationDate", "CodeNumber", "Priority", "BussinessDocType", "Timestamp"):
        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        start = seed.find(f"<edXML:{tag}>")
        if start < 0:
            continue
        end = seed.find(f"</edXML:{tag}>", start)
        check((seed[: start + len(tag) + 8] + escaped + seed[end:]).encode("utf-8", "surrogatepass"))
