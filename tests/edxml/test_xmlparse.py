"""Hostile bytes at the parser: always a documented vbdt error, quickly, never a hang or a blow-up."""

import time

import pytest

import vbdt
from vbdt.edxml.xmlparse import EDXML_NS

NS = EDXML_NS.encode()

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b']><edXML xmlns="' + NS + b'">&lol9;</edXML>'
)
XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><edXML xmlns="' + NS + b'">&e;</edXML>'
XXE_NET = b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><edXML xmlns="' + NS + b'"/>'
PARAM_ENTITY = b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><edXML xmlns="' + NS + b'"/>'
QUADRATIC = b'<!DOCTYPE x [<!ENTITY a "' + b"A" * 100_000 + b'">]><edXML xmlns="' + NS + b'">' + b"&a;" * 1000 + b"</edXML>"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", vbdt.MalformedXml),
        (b"   \n", vbdt.MalformedXml),
        (b"not xml at all", vbdt.NotEdxml),  # the reader: a body that is not XML at all
        (b"<edXML xmlns='" + NS + b"'><unclosed></edXML>", vbdt.MalformedXml),
        (b"\xff\xfe<\x00", vbdt.MalformedXml),
        (BILLION_LAUGHS, vbdt.UnsafeXml),
        (XXE, vbdt.UnsafeXml),
        (XXE_NET, vbdt.UnsafeXml),
        (PARAM_ENTITY, vbdt.UnsafeXml),
        (QUADRATIC, vbdt.UnsafeXml),
        (b"<edXML xmlns='" + NS + b"'>&undefined;</edXML>", vbdt.UnsafeXml),
        (b"<edXML/>", vbdt.NotEdxml),
        (b"<edXML xmlns='urn:wrong'/>", vbdt.NotEdxml),
        (b"<html xmlns='" + NS + b"'/>", vbdt.NotEdxml),
        (b"<a>" * 100_000 + b"</a>" * 100_000, vbdt.DocumentTooDeep),
        (b"<edXML xmlns='" + NS + b"'>" + b"<x>" * 40 + b"</x>" * 40 + b"</edXML>", vbdt.DocumentTooDeep),
    ],
    ids=[
        "empty", "blank", "text", "unclosed", "bad-encoding", "billion-laughs", "xxe-file", "xxe-network",
        "parameter-entity", "quadratic-blowup", "undefined-entity", "no-namespace", "wrong-namespace",
        "wrong-root", "deep-100k", "deep-40",
    ],
)
def test_hostile_input_gets_a_clear_error(data: bytes, error: type[vbdt.XmlError]) -> None:
    start = time.perf_counter()
    with pytest.raises(error) as info:
        vbdt.validate(data)
    assert time.perf_counter() - start < 2
    assert isinstance(info.value, vbdt.VbdtError)
    assert str(info.value)


def test_secrets_never_leak_through_entities() -> None:
    with pytest.raises(vbdt.UnsafeXml):
        vbdt.read(XXE)


def test_size_limit_is_enforced_before_parsing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    limits = vbdt.Limits(max_bytes=1000)
    with pytest.raises(vbdt.DocumentTooLarge):
        vbdt.validate(b"<edXML xmlns='" + NS + b"'>" + b" " * 2000 + b"</edXML>", limits=limits)
    big = tmp_path / "big.edxml"
    big.write_bytes(b" " * 2000)
    with pytest.raises(vbdt.DocumentTooLarge):
        vbdt.validate(big, limits=limits)


def test_unreadable_sources_are_usage_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(vbdt.UsageError, match="no such file"):
        vbdt.validate(tmp_path / "missing.edxml")
    with pytest.raises(vbdt.UsageError, match="directory"):
        vbdt.validate(tmp_path)
    with pytest.raises(vbdt.UsageError):
        vbdt.validate(12345)  # type: ignore[arg-type]


def test_malformed_error_has_line_and_column() -> None:
    with pytest.raises(vbdt.MalformedXml) as info:
        vbdt.validate(b"<edXML xmlns='" + NS + b"'>\n<a>\n</b></edXML>")
    assert info.value.line == 3


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_path_is_read_only_up_to_the_limit(device: str) -> None:
    # stat says 0 bytes for a device: the reader must not trust it and read forever
    with pytest.raises(vbdt.DocumentTooLarge):
        vbdt.validate(device, limits=vbdt.Limits(max_bytes=1 << 20))
