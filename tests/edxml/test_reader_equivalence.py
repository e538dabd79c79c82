"""Reading gives exactly the results recorded before the reader's speed work (issue 13).

For every file under ``tests/data``, a few synthetic documents (one with 1,200 recipients, read by the
counted parse) and a few hundred seeded mutations of them (elements dropped, duplicated, moved,
emptied or renamed; bad dates, OrganIds, numbers and codes; comments inside values; unknown
elements and attributes; byte-level deviations), the whole ``validate()`` result is written out
canonically, lenient and strict: each finding (code, severity, message, path, line), the model
(``model_dump(mode="json")`` and a typed dump that also tells ``OrganId`` from ``str``, the enum
classes, the time zone objects, the fields set and the field order) or the error raised. The digest
of each result is compared with ``reader_equivalence.json``, recorded from the reader as it was.

    python tests/edxml/test_reader_equivalence.py --record       # after an intended change of results
    python tests/edxml/test_reader_equivalence.py --show CASE    # one case's result, as JSON
"""

from __future__ import annotations

import copy
import enum
import functools
import hashlib
import json
import random
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import BaseModel

import vbdt
from vbdt.edxml.attachment import ContentSource
from vbdt.edxml.organid import OrganId
from vbdt.edxml.xmlparse import EDXML_NS

HERE = Path(__file__).parent
DATA = HERE.parent / "data"
FIXTURE = HERE / "reader_equivalence.json"
TODAY = date(2026, 1, 1)
# strict reading also checks the agencies against a directory (EDX102)
DIRECTORY = frozenset({"000.00.00.G22", "000.00.00.H41", "000.00.00.A80", "000.00.00.H14", "000.00.01.H14",
                       "000.00.00.H01", "000.00.01.H01", "000.00.02.H01"})  # fmt: skip
MUTANTS_PER_SEED = 24


def e(name: str) -> str:
    return f"{{{EDXML_NS}}}{name}"


# -- seeds: the data files, synthetic documents and byte-level deviations


def _organization(tag: str, organ_id: str, index: int, full: bool) -> str:
    extra = (
        f"<edXML:OrganizationInCharge>UBND Tỉnh {index}</edXML:OrganizationInCharge>"
        f"<edXML:OrganAdd>Số {index}, đường Trần Phú</edXML:OrganAdd><edXML:Email>vt{index}@example.gov.vn</edXML:Email>"
        f"<edXML:Telephone>0203 {index:06d}</edXML:Telephone><edXML:Fax>0203 {index:06d}</edXML:Fax>"
        f"<edXML:Website>www.x{index}.gov.vn</edXML:Website>"
        if full
        else ""
    )
    return (
        f"\n<edXML:{tag}><edXML:OrganId>{organ_id}</edXML:OrganId>"
        f"<edXML:OrganName>UBND Xã số {index}</edXML:OrganName>{extra}</edXML:{tag}>"
    )


def synthetic_document(recipients: int, *, rich: bool) -> bytes:
    """A document written from a template (not by vbdt's writer, so the reference never moves)."""
    to = "".join(
        _organization("To", f"000.{i // 100:02d}.{i % 100:02d}.H01" if i else "000.00.01.H01", i + 1, full=rich and i % 3 == 0)
        for i in range(recipients)
    )
    business_extra = (
        "<edXML:BussinessDocumentInfo><edXML:DocumentInfo>1</edXML:DocumentInfo><edXML:DocumentReceiver>0</edXML:DocumentReceiver>"
        "<edXML:ReceiverList><edXML:Receiver><edXML:OrganId>000.00.01.H01</edXML:OrganId><edXML:ReceiverType>1</edXML:ReceiverType></edXML:Receiver>"
        "<edXML:Receiver><edXML:OrganId>000.00.02.H01</edXML:OrganId><edXML:ReceiverType>2</edXML:ReceiverType></edXML:Receiver></edXML:ReceiverList>"
        "</edXML:BussinessDocumentInfo>"
        "<edXML:StaffInfo><edXML:Department>Văn phòng</edXML:Department><edXML:Staff>Văn thư</edXML:Staff>"
        "<edXML:Email>vanthu@example.gov.vn</edXML:Email><edXML:Mobile>0912000001</edXML:Mobile></edXML:StaffInfo>"
        "<edXML:ReplacementInfoList><edXML:ReplacementInfo><edXML:DocumentId>000.00.00.H01,2025/12/01,04/CT-UBND</edXML:DocumentId>"
        "<edXML:OrganIdList><edXML:OrganId>000.00.01.H01</edXML:OrganId><edXML:OrganId>000.00.02.H01</edXML:OrganId></edXML:OrganIdList>"
        "</edXML:ReplacementInfo></edXML:ReplacementInfoList>"
        if rich
        else ""
    )
    response = (
        "<edXML:ResponseFor><edXML:OrganId>000.00.00.G22</edXML:OrganId><edXML:Code><edXML:CodeNumber>7816</edXML:CodeNumber>"
        "<edXML:CodeNotation>VPCP-TTĐT</edXML:CodeNotation></edXML:Code><edXML:PromulgationDate>2015/09/30</edXML:PromulgationDate>"
        "<edXML:DocumentId>000.00.00.G22,2015/09/30,7816/VPCP-TTĐT</edXML:DocumentId></edXML:ResponseFor>"
        "<edXML:ResponseFor><edXML:OrganId>000.00.00.H14</edXML:OrganId><edXML:DocumentId>000.00.00.H14,2025/10/02,12/UBND</edXML:DocumentId></edXML:ResponseFor>"
        if rich
        else ""
    )
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXML xmlns:edXML="{EDXML_NS}"><edXML:edXMLEnvelope><edXML:edXMLHeader><edXML:MessageHeader>{_organization("From", "000.00.00.H01", 0, full=True)}{to}
<edXML:DocumentId>000.00.00.H01,2025/12/24,05/CT-UBND</edXML:DocumentId>
<edXML:Code><edXML:CodeNumber>05</edXML:CodeNumber><edXML:CodeNotation>CT-UBND</edXML:CodeNotation></edXML:Code>
<edXML:PromulgationInfo><edXML:Place>Hà Nội</edXML:Place><edXML:PromulgationDate>2025/12/24</edXML:PromulgationDate></edXML:PromulgationInfo>
<edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeDetail>3</edXML:TypeDetail><edXML:TypeName>Chỉ thị</edXML:TypeName></edXML:DocumentType>
<edXML:Subject>Về việc tăng cường phòng, chống thiên tai</edXML:Subject><edXML:Content>Triển khai ngay.</edXML:Content>
<edXML:SignerInfo><edXML:Competence>TM. ỦY BAN NHÂN DÂN</edXML:Competence><edXML:Position>Chủ tịch</edXML:Position><edXML:FullName>Nguyễn Văn A</edXML:FullName></edXML:SignerInfo>
<edXML:DueDate>2025/12/31</edXML:DueDate>
<edXML:OtherInfo><edXML:Priority>1</edXML:Priority><edXML:SphereOfPromulgation>Toàn tỉnh</edXML:SphereOfPromulgation><edXML:TyperNotation>VT</edXML:TyperNotation>
<edXML:PromulgationAmount>12</edXML:PromulgationAmount><edXML:PageAmount>1</edXML:PageAmount><edXML:Direction>false</edXML:Direction>
<edXML:Appendixes><edXML:Appendix>Phụ lục I</edXML:Appendix><edXML:Appendix>Phụ lục II</edXML:Appendix></edXML:Appendixes></edXML:OtherInfo>{response}
<edXML:SteeringType>1</edXML:SteeringType><edXML:ToPlaces><edXML:Place>Như trên;</edXML:Place><edXML:Place>Lưu: VT.</edXML:Place></edXML:ToPlaces>
</edXML:MessageHeader><edXML:TraceHeaderList><edXML:TraceHeader><edXML:OrganId>000.00.00.H01</edXML:OrganId><edXML:Timestamp>2025/12/24 08:30:00</edXML:Timestamp></edXML:TraceHeader>
<edXML:Bussiness><edXML:DocumentId>000.00.00.H01,2025/12/01,04/CT-UBND</edXML:DocumentId><edXML:BussinessDocType>{3 if rich else 0}</edXML:BussinessDocType>
<edXML:BussinessDocReason>Thay thế văn bản</edXML:BussinessDocReason><edXML:Paper>0</edXML:Paper>{business_extra}</edXML:Bussiness></edXML:TraceHeaderList>
</edXML:edXMLHeader><edXML:edXMLBody><edXML:edXMLManifest version="1.0"><edXML:Reference><edXML:ContentId>cid:1</edXML:ContentId>
<edXML:ContentType>application/pdf</edXML:ContentType><edXML:Description>Chỉ thị</edXML:Description><edXML:AttachmentName>05-CT-UBND.pdf</edXML:AttachmentName></edXML:Reference>
<edXML:Reference><edXML:ContentId>cid:2</edXML:ContentId><edXML:ContentType>text/plain</edXML:ContentType><edXML:AttachmentName>ghi-chu.txt</edXML:AttachmentName></edXML:Reference>
</edXML:edXMLManifest></edXML:edXMLBody></edXML:edXMLEnvelope>
<edXML:AttachmentEncoded><edXML:Attachment><edXML:ContentId>cid:1</edXML:ContentId><edXML:AttachmentName>05-CT-UBND.pdf</edXML:AttachmentName>
<edXML:Description>Chỉ thị</edXML:Description><edXML:ContentType>application/pdf</edXML:ContentType>
<edXML:ContentTransferEncoded>JVBERi0xLjcKMSAwIG9iaiA8PD4+IGVuZG9iagp0cmFpbGVyIDw8Pj4KJSVFT0YK</edXML:ContentTransferEncoded></edXML:Attachment>
<edXML:Attachment><edXML:ContentId>cid:2</edXML:ContentId><edXML:AttachmentName>ghi-chu.txt</edXML:AttachmentName><edXML:ContentType>text/plain</edXML:ContentType>
<edXML:ContentTransferEncoded>R2hpIGNow7o=</edXML:ContentTransferEncoded></edXML:Attachment></edXML:AttachmentEncoded></edXML:edXML>
"""
    return text.encode("utf-8")


def seeds() -> dict[str, bytes]:
    out = {str(path.relative_to(DATA)): path.read_bytes() for path in sorted(DATA.rglob("*.edxml"))}
    out["synthetic/rich-5"] = synthetic_document(5, rich=True)
    out["synthetic/plain-1"] = synthetic_document(1, rich=False)
    out["synthetic/bulk-1200"] = synthetic_document(1200, rich=False)  # over 200,000 bytes: the counted parse
    return out


def byte_variants(name: str, data: bytes) -> dict[str, bytes]:
    """Deviations before the tree exists: junk before the declaration, a BOM, UTF-16, Latin-1, truncation."""
    out = {
        f"{name}#junk": b"\r\n--boundary\r\n" + data,
        f"{name}#bom": b"\xef\xbb\xbf" + data,
        f"{name}#truncated": data[: len(data) * 2 // 3],
        f"{name}#not-xml": b"HTTP/1.1 200 OK\r\n\r\n",
    }
    text = data.decode("utf-8")
    out[f"{name}#utf16"] = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    try:
        out[f"{name}#latin1"] = text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    except UnicodeEncodeError:
        pass
    return out


# -- mutations of a seed's tree

ORGAN_IDS = ["28.22.H17", "null", "NULL", " null ", "G12", "h01", "0312345678", "vn.gov.hub", "12.34.W56",
             "000.00.00.h01", " 000.00.00.H01 ", "000.00.00.H01", "000.00.01.H01", "000.01.00.H01", "A" * 40, ""]
DATES = ["2019/02/30", "30/01/2019", "1/2/2019", "2019-01-30", "2019/01/30", "2015/09/20 25:00:00",
         "20/09/2015 11:08:36", "2015/09/20", "2015/9/20 1:2:3", "2030/01/01", "1990/01/01 00:00:00", ""]
NUMBERS = ["-1", "0", "1", "01", "2", "3", "4", "5", "7", "13", "99", "+3", "1e3", "99999999999999999999999", "٣",
           "true", "false", "abc", " 2 ", ""]
TEXTS = ["", " ", "\n\t", "7816/VPCP-TTĐT", "/x", "cid:1", "cid:2", "doc.pdf", "application/pdf",
         "application/x-unknown", "text/plain", "JVBERi0xLjcK", "not base64!", "Zm9v\nYmFy", "", "Điều 1 – “trích yếu”",
         "000.00.00.H01,2025/12/24,05/CT-UBND", "000.00.00.H01,2025/13/24,05/CT-UBND", "opaque-id-123",
         "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT", "x" * 300]  # fmt: skip
VALUES = {"OrganId": ORGAN_IDS, "PromulgationDate": DATES, "DueDate": DATES, "Timestamp": DATES}
TAGS = ["OrganId", "PromulgationDate", "DueDate", "Timestamp", "CodeNumber", "CodeNotation", "Priority", "Type",
        "TypeDetail", "StatusCode", "BussinessDocType", "Paper", "Direction", "DocumentId", "ContentId",
        "ContentType", "ReceiverType", "PageAmount", "PromulgationAmount", "SteeringType", "Description",
        "OrganName", "Subject", "AttachmentName", "ContentTransferEncoded", "DocumentInfo", "ReplacementInfoList"]  # fmt: skip
for _tag in TAGS:
    VALUES.setdefault(_tag, NUMBERS if _tag[0] in "PTSBRD" and "Name" not in _tag else TEXTS)
NEW_TAGS = ["To", "OrganId", "Unknown", "DocumentType", "PromulgationInfo", "TraceHeader", "Bussiness", "Code",
            "StaffInfo", "Attachment", "ResponseFor", "Place"]  # fmt: skip


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _pick(r: random.Random, root: etree._Element) -> etree._Element | None:
    elements = [x for x in root.iter(etree.Element) if x is not root]
    if not elements:
        return None
    header = [x for x in elements if any(_local(a) == "edXMLHeader" for a in x.iterancestors())]
    targeted = [x for x in elements if _local(x) in TAGS]
    pool = r.choice([elements, header or elements, targeted or elements])
    return r.choice(pool)


def _mutate(r: random.Random, root: etree._Element) -> str:
    element = _pick(r, root)
    if element is None:
        return "nothing"
    parent = element.getparent()
    assert parent is not None
    op = r.choice(["drop", "duplicate", "move", "text", "text", "text", "empty", "unknown", "comment",
                   "attribute", "no-namespace", "swap", "rename", "blank"])  # fmt: skip
    if op == "drop":
        parent.remove(element)
    elif op == "duplicate":
        parent.insert(parent.index(element) + 1, copy.deepcopy(element))
    elif op == "move":
        parent.remove(element)
        parent.insert(r.randrange(len(parent) + 1), element)
    elif op == "text":
        for node in list(element):
            element.remove(node)
        values = VALUES.get(_local(element), TEXTS) if r.random() < 0.8 else r.choice([ORGAN_IDS, DATES, NUMBERS, TEXTS])
        element.text = r.choice(values)
    elif op == "blank":
        element.text = r.choice(["", "  ", None])
    elif op == "empty":
        for node in list(element):
            element.remove(node)
        element.text = None
        element.attrib.clear()
    elif op == "unknown":
        choice = r.random()
        tag = e(r.choice(NEW_TAGS)) if choice < 0.6 else r.choice(["Bare", "{urn:other}X"])
        new = etree.SubElement(element, tag) if r.random() < 0.5 else etree.Element(tag)
        if new.getparent() is None:
            parent.insert(parent.index(element), new)
        new.text = r.choice(TEXTS)
    elif op == "comment":
        text = element.text or ""
        cut = r.randrange(len(text) + 1)
        element.text = text[:cut]
        comment = etree.Comment(" c ")
        comment.tail = text[cut:]
        element.insert(0, comment)
    elif op == "attribute":
        target = next(root.iter(e("TraceHeaderList")), element) if r.random() < 0.5 else element
        target.set(r.choice(["id", "version", "mustUnderstand", "actor", "foo"]), "1")
    elif op == "no-namespace":
        element.tag = _local(element)
    elif op == "swap":
        index = parent.index(element)
        if index + 1 < len(parent):
            parent.insert(index, parent[index + 1])
    else:  # rename
        element.tag = e(r.choice(NEW_TAGS))
    return f"{op}:{_local(element)}"


def mutants(name: str, data: bytes, count: int) -> dict[str, bytes]:
    try:
        tree = etree.fromstring(data, etree.XMLParser(huge_tree=True, remove_blank_text=False)).getroottree()
    except etree.XMLSyntaxError:
        return {}
    out = {}
    for i in range(count):
        r = random.Random(f"{name}:{i}")
        root = copy.deepcopy(tree.getroot())
        ops = [_mutate(r, root) for _ in range(r.choice([1, 1, 2, 3]))]
        out[f"{name}~{i}:{','.join(ops)}"] = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


# Edits (a regular expression, its replacement) that reach findings random mutations rarely do.
EDITS = {
    "interop/status-02-rejected.edxml": [
        ("no-reason", "<edXML:Description>[^<]*", "<edXML:Description> <!-- Văn thư --> "),
        ("date-alone", "2015/09/20 11:08:36", "2015/09/20"),
        ("status-1", "<edXML:StatusCode>02", "<edXML:StatusCode>2"),
    ],
    "synthetic/plain-1": [("no-recipient", "<edXML:To>.*?</edXML:To>", "")],
    "synthetic/rich-5": [
        ("negative", "<edXML:PageAmount>1<", "<edXML:PageAmount>-1<"),
        ("empty-file", "R2hpIGNow7o=", ""),
        ("sender-recipient", "<edXML:OrganId>000.00.01.H01</edXML:OrganId><edXML:OrganName>UBND Xã số 1<",
         "<edXML:OrganId>000.00.00.H01</edXML:OrganId><edXML:OrganName>UBND Xã số 1<"),
        ("two-businesses", "</edXML:Bussiness>", "</edXML:Bussiness><edXML:Bussiness><edXML:BussinessDocType>1</edXML:BussinessDocType></edXML:Bussiness>"),
        ("comment-in-id", "<edXML:OrganId>000.00.00.H01<", "<edXML:OrganId>000.00.<!-- x -->00.H01<"),
        ("null-to", "<edXML:OrganId>000.00.02.H01</edXML:OrganId><edXML:OrganName>", "<edXML:OrganId>null</edXML:OrganId><edXML:OrganName>"),
        ("no-name", "<edXML:OrganName>UBND Xã số 2</edXML:OrganName>", ""),
        ("replacement-empty", "<edXML:ReplacementInfoList>", "<edXML:ReplacementInfoList/><edXML:X>"),
        ("timestamp-ms", "2025/12/24 08:30:00", "2025/12/24 08:30:00.5"),
        ("huge-count", "<edXML:PromulgationAmount>12<", "<edXML:PromulgationAmount>123456789012345678901234567890<"),
        ("type-0", "<edXML:Type>1<", "<edXML:Type>0<"),
        ("priority-0", "<edXML:Priority>1<", "<edXML:Priority>0<"),
        ("paper-true", "<edXML:Paper>0<", "<edXML:Paper>true<"),
    ],
}


def edited(name: str, data: bytes) -> dict[str, bytes]:
    text = data.decode("utf-8")
    out = {}
    for label, pattern, replacement in EDITS.get(name, []):
        new, count = re.subn(pattern, replacement, text, count=1, flags=re.DOTALL)
        assert count == 1, (name, label)
        out[f"{name}!{label}"] = new.encode("utf-8")
    return out


@functools.cache
def cases() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, data in seeds().items():
        out[name] = data
        bulk = name.startswith("synthetic/bulk")
        if not bulk:
            out.update(byte_variants(name, data))
        out.update(edited(name, data))
        out.update(mutants(name, data, 6 if bulk else MUTANTS_PER_SEED))
    return out


# -- the canonical result


def typed(value: Any) -> Any:
    """A JSON-ready dump that keeps what model_dump(mode="json") loses: types, tz objects, fields set, order."""
    if isinstance(value, BaseModel):
        return {
            "model": type(value).__name__,
            "fields_set": sorted(value.model_fields_set),
            "values": [[k, typed(v)] for k, v in value.__dict__.items()],
            "extra": value.__pydantic_extra__,
            "private": value.__pydantic_private__,
        }
    if isinstance(value, OrganId):
        return ["OrganId", str(value), value.is_standard]
    if isinstance(value, enum.Enum):
        return [type(value).__name__, value.value]
    if isinstance(value, datetime):
        tz = value.tzinfo
        return ["datetime", value.isoformat(), type(tz).__name__, repr(tz), tz.tzname(value) if tz else None]
    if isinstance(value, date):
        return ["date", value.isoformat()]
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, ContentSource):
        return [type(value).__name__, hashlib.sha256(value.base64().encode()).hexdigest(), value.size]
    if value is None or type(value) in (str, int, bool):
        return value
    raise TypeError(f"unexpected {type(value).__name__} in a model")  # a reader change would show here


def outcome(data: bytes, lenient: bool) -> dict[str, Any]:
    try:
        report = vbdt.validate(data, lenient=lenient, directory=None if lenient else DIRECTORY, today=TODAY)
    except vbdt.VbdtError as exc:
        return {"error": [type(exc).__name__, str(exc), getattr(exc, "line", None)]}
    package = report.package
    dumped: Any = None
    if package is not None:
        exclude = {"attachments": {"__all__": {"content"}}} if isinstance(package, vbdt.Document) else None
        dumped = package.model_dump(mode="json", exclude=exclude)  # type: ignore[arg-type]
    return {
        "valid": report.valid,
        "findings": [[f.code, f.severity.value, f.message, f.path, f.line] for f in report.findings],
        "model": dumped,
        "typed": typed(package),
        "repr": repr(package),
    }


def digest(result: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(result, ensure_ascii=False).encode()).hexdigest()[:24]


@functools.cache
def outcomes() -> dict[str, dict[str, Any]]:
    return {
        f"{name}|{mode}": outcome(data, lenient=mode == "lenient")
        for name, data in cases().items()
        for mode in ("lenient", "strict")
    }


def test_every_result_is_the_recorded_one() -> None:
    recorded = json.loads(FIXTURE.read_text())
    now = {name: digest(result) for name, result in outcomes().items()}
    assert len(now) >= 1000 and set(now) == set(recorded), "the corpus changed: record it again (see the docstring)"
    changed = sorted(name for name in now if now[name] != recorded[name])
    assert not changed, f"{len(changed)} results differ from the reference, e.g. {changed[:5]}"


def test_the_corpus_reaches_the_findings() -> None:
    """The corpus exercises the reader's findings and errors (valid files alone would prove little)."""
    seen = {f[0] for result in outcomes().values() for f in result.get("findings", [])}
    seen |= {result["error"][0] for result in outcomes().values() if "error" in result}
    assert sum(result.get("model") is not None for result in outcomes().values()) > 500
    assert not set(vbdt.CODES) - seen, sorted(set(vbdt.CODES) - seen)


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--record"]:
        recorded = {name: digest(result) for name, result in outcomes().items()}
        FIXTURE.write_text(json.dumps(recorded, indent=0, sort_keys=True) + "\n")
        print(f"recorded {FIXTURE}")
    elif argv[:1] == ["--show"]:  # CASE is "name|lenient" or "name|strict", as in the fixture
        name, _, mode = argv[1].rpartition("|")
        print(json.dumps(outcome(cases()[name], lenient=mode == "lenient"), ensure_ascii=False, indent=1))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    _main(sys.argv[1:])
