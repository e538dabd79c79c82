"""Element paths: lxml's C path and the walked one name every element alike (findings keep their paths)."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from vbdt.edxml.paths import _walked_path, element_path

INTEROP = Path(__file__).resolve().parents[1] / "data" / "interop"


def test_every_element_of_the_samples_has_the_walked_path() -> None:
    checked = 0
    for sample in sorted(INTEROP.glob("*.edxml")):
        root = etree.fromstring(sample.read_bytes(), etree.XMLParser(huge_tree=True))
        for element in root.iter(etree.Element):
            assert element_path(element) == _walked_path(element), sample.name
            checked += 1
    assert checked > 500


def test_same_name_siblings_are_indexed_by_tag_not_by_local_name() -> None:
    root = etree.fromstring(
        b'<edXML xmlns="urn:e" xmlns:o="urn:o"><To/><o:To/><!-- c --><To><OrganId/></To><Code/></edXML>'
    )
    to_1, other, _comment, to_2, code = root
    assert element_path(to_1) == "/edXML/To[1]"
    assert element_path(other) == "/edXML/To"  # another namespace: not a sibling of the same tag
    assert element_path(to_2[0]) == "/edXML/To[2]/OrganId"
    assert element_path(code) == "/edXML/Code"
    assert element_path(root) == "/edXML"


def test_detached_elements_and_comments_take_the_walked_path() -> None:
    root = etree.fromstring(b"<a><b><c/><c/></b><!-- note --></a>")
    comment = root[1]
    assert element_path(comment) == _walked_path(comment) == "/a/?"
    branch = root[0]
    root.remove(branch)  # still in the document, no longer in its tree
    assert element_path(branch[1]) == _walked_path(branch[1]) == "/b/c[2]"
