"""The conformance checks (vbdt.conformance): every known defect of the interop packages is reported,
a clean package signed by the test PKI passes every check, hostile bytes fail one check with one line.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

import vbdt
from conftest import G22, H14, INTEROP, INTEROP_FILES
from vbdt.cli.demo import build_directive
from vbdt.conformance import CHECKS, SCHEMA, ConformanceReport, FileReport, Outcome, check_bytes, render_html
from vbdt.conformance.advice import ADVICE
from vbdt.conformance.checks import CHECK_OF_CODE, CheckFinding, check_of
from vbdt.trust.chain import TrustStore

ISSUED = date(2026, 11, 23)
DOCUMENTS = [p for p in INTEROP_FILES if "document" in p.name]
STATUSES = [p for p in INTEROP_FILES if p.name.startswith("status-")]
CHECK_IDS = [spec.id for spec in CHECKS]


def run(path: Path, **options: object) -> FileReport:
    return check_bytes(path.read_bytes(), source=path.name, **options)  # type: ignore[arg-type]


def findings(report: FileReport, check_id: str, code: str) -> list[CheckFinding]:
    return [f for f in report.check(check_id).findings if f.code == code]


# -- the tables ------------------------------------------------------------------------------------


def test_every_finding_code_has_a_check_and_advice() -> None:
    for code in vbdt.CODES:
        assert code in CHECK_OF_CODE, code
        assert check_of(code) in CHECK_IDS
        why, fix = ADVICE[code]
        assert why.strip() and fix.strip(), code
    assert set(CHECK_OF_CODE.values()) <= set(CHECK_IDS)
    assert all(code in ADVICE for code in CHECK_OF_CODE)


def test_a_future_code_falls_in_its_hundreds_check() -> None:
    assert check_of("EDX299") == "rules.dates" and check_of("EDX399") == "rules.attachments"


# -- tests/data/interop: every defect its README lists -----------------------------------------------


@pytest.mark.parametrize("path", INTEROP_FILES, ids=lambda p: p.name)
def test_every_interop_file_is_reported_not_conforming(path: Path) -> None:
    report = run(path)
    assert report.kind == ("status" if path.name.startswith("status-") else "document")
    assert not report.conforms
    assert [c.id for c in report.checks] == CHECK_IDS
    for check in report.checks:
        for f in check.findings:
            assert f.reason and "\n" not in f.reason and f.why and f.fix
    # the writing conventions: the root is in the default namespace, not edXML:
    prefix = findings(report, "writer.namespace", "PREFIX")
    assert report.check("writer.namespace").outcome is Outcome.FAIL
    assert any(f.path == "/edXML" and f.line == 2 for f in prefix)
    # no trust anchors given: the chain and binding are skipped, saying why
    assert report.check("signature.chain").outcome is Outcome.SKIPPED
    assert "--trust" in report.check("signature.chain").note


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_the_signature_defects_of_every_document(path: Path) -> None:
    report = run(path)
    assert report.check("signature.profile").outcome is Outcome.FAIL
    # the Signature element is in the edXML default namespace, not XML-DSig
    (ns,) = findings(report, "signature.profile", "EDX901")
    assert ns.path == "/edXML/edXMLEnvelope/edXMLHeader/Signature" and ns.line
    assert "http://www.mic.gov.vn/TBT/QCVN_102_2016" in ns.reason
    # X509Certificate is truncated
    (cert,) = findings(report, "signature.profile", "EDX905")
    assert "MIIFqTCCBJG" in cert.reason and cert.path.endswith("X509Data/X509Certificate")
    # the algorithms are RSA-SHA1
    sha1 = findings(report, "signature.profile", "EDX904")
    assert {f.path.rsplit("/", 1)[-1] for f in sha1} == {"SignatureMethod", "DigestMethod"}
    assert any("rsa-sha1" in f.reason for f in sha1)
    # the same DigestValue reused across files: the SDK placeholder, no signature of this package
    assert findings(report, "signature.profile", "EDX907")
    # so no signature here can verify: there is none in the XML-DSig namespace
    assert any("not signed" in f.reason for f in findings(report, "signature.profile", "SIG-PROFILE"))
    # DocumentId and PromulgationDate disagree
    (date_mismatch,) = findings(report, "rules.identifiers", "EDX112")
    assert date_mismatch.path.endswith("MessageHeader/DocumentId") and date_mismatch.line


def test_the_defects_of_new_document() -> None:
    report = run(INTEROP / "new-document.edxml")
    # one To/OrganId is 28.22.H17 (three groups)
    (organ,) = findings(report, "rules.identifiers", "EDX101")
    assert "28.22.H17" in organ.reason and organ.path.endswith("To/OrganId") and organ.line == 18
    # one CodeNumber is not a number
    (number,) = findings(report, "rules.dates", "EDX202")
    assert "74fass22" in number.reason and number.path.endswith("Code/CodeNumber")
    assert {"EDX111", "EDX113"} <= report.codes()
    assert report.check("rules.dates").outcome is Outcome.FAIL


def test_the_order_defect_of_new_document_small() -> None:
    report = run(INTEROP / "new-document-small.edxml")
    (order,) = findings(report, "writer.order", "EDX902")
    assert order.path.endswith("TraceHeaderList/TraceHeader") and order.line


@pytest.mark.parametrize("path", [*STATUSES, INTEROP / "revocation-document.edxml"], ids=lambda p: p.name)
def test_response_for_code_in_one_element(path: Path) -> None:
    report = run(path)
    (code,) = findings(report, "writer.form", "EDX903")
    assert "7816/VPCP-TTĐT" in code.reason or "267/VPCP-TTĐT" in code.reason
    assert code.path.endswith("ResponseFor/Code") and code.line
    assert report.check("writer.form").outcome is Outcome.FAIL


@pytest.mark.parametrize("path", STATUSES, ids=lambda p: p.name)
def test_status_messages_are_unsigned_and_have_no_pdf(path: Path) -> None:
    report = run(path)
    assert any("not signed" in f.reason for f in findings(report, "signature.profile", "SIG-PROFILE"))
    assert report.check("pdf.signatures").outcome is Outcome.SKIPPED
    assert report.check("writer.status-code").outcome is Outcome.PASS


def test_lenient_profile_turns_variants_into_warnings() -> None:
    report = run(INTEROP / "status-01-arrived.edxml", profile="lenient")
    assert report.check("writer.form").outcome is Outcome.WARN
    assert report.check("writer.namespace").outcome is Outcome.WARN
    assert report.check("signature.profile").outcome is Outcome.FAIL  # unsigned is never a variant
    assert not report.conforms


# -- a clean package of vbdt's own, signed by the test PKI ---------------------------------------------


@pytest.fixture(scope="module")
def clean(exchange_pki, example_directory: vbdt.Directory) -> tuple[bytes, TrustStore, object]:  # type: ignore[no-untyped-def]
    pki, folder = exchange_pki
    document = build_directive(example_directory, issued=ISSUED)
    key = pki.agencies[H14]
    return vbdt.pack(document, key, person=pki.signer, seal=key), TrustStore.from_pem(folder / "ca.pem"), pki


def test_a_clean_signed_package_passes_every_check(clean, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    data, store, _ = clean
    report = check_bytes(data, source="clean.edxml", trust=store, directory=example_directory, today=ISSUED)
    assert {c.id: c.outcome for c in report.checks} == {i: Outcome.PASS for i in CHECK_IDS}
    assert report.conforms and report.kind == "document" and not report.codes()
    assert "bound to 000.00.00.H14 by uid" in report.check("signature.binding").note
    assert "05-CT-UBND.pdf" in report.check("pdf.signatures").note


def test_a_clean_package_without_trust_skips_only_what_needs_it(clean) -> None:  # type: ignore[no-untyped-def]
    data, _, _ = clean
    report = check_bytes(data, today=ISSUED)
    skipped = {c.id for c in report.checks if c.outcome is Outcome.SKIPPED}
    assert skipped == {"signature.chain", "signature.binding", "pdf.signatures"}
    assert "needs --trust" in report.check("pdf.signatures").note
    assert report.conforms


def test_a_changed_package_fails_the_signature(clean) -> None:  # type: ignore[no-untyped-def]
    data, store, _ = clean
    report = check_bytes(data.replace("Chủ tịch".encode(), "Phó Chủ tịch".encode(), 1), trust=store, today=ISSUED)
    assert report.check("signature.chain").outcome is Outcome.FAIL
    assert findings(report, "signature.chain", "SIG-VALUE")
    assert report.check("signature.binding").outcome is Outcome.SKIPPED


def test_another_agencys_certificate_fails_the_binding_and_the_seal(exchange_pki, example_directory) -> None:  # type: ignore[no-untyped-def]
    pki, folder = exchange_pki
    wrong = pki.agencies[G22]
    data = vbdt.pack(build_directive(example_directory, issued=ISSUED), wrong, person=pki.signer, seal=wrong)
    report = check_bytes(data, trust=TrustStore.from_pem(folder / "ca.pem"), today=ISSUED)
    (binding,) = findings(report, "signature.binding", "SIG-BINDING")
    assert G22 in binding.reason and "000.00.00.H14" in binding.reason
    assert report.check("signature.chain").outcome is Outcome.PASS
    (pdf,) = findings(report, "pdf.signatures", "PDF")
    assert "seal" in pdf.reason and pdf.path == "/edXML/AttachmentEncoded/Attachment" and pdf.line


def test_an_unsigned_pdf_fails_with_or_without_trust(exchange_pki, example_directory) -> None:  # type: ignore[no-untyped-def]
    pki, folder = exchange_pki
    data = vbdt.pack(build_directive(example_directory, issued=ISSUED), pki.agencies[H14])  # envelope only
    for store in (None, TrustStore.from_pem(folder / "ca.pem")):
        report = check_bytes(data, trust=store, today=ISSUED)
        (pdf,) = findings(report, "pdf.signatures", "PDF")
        assert "not signed" in pdf.reason
        assert report.check("signature.profile").outcome is Outcome.PASS


# -- hostile bytes -------------------------------------------------------------------------------------

BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10))
        + b"]>\n<edXML>&lol9;</edXML>")


@pytest.mark.parametrize(("data", "fragment"), [
    (b"PK\x03\x04 not xml at all", "not XML"),
    (BOMB, "DOCTYPE"),
    (b"", "empty"),
    (b'<?xml version="1.0"?><a/>', "expected edXML"),
    (b'<?xml version="1.0"?><edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><unclosed>', "line"),
    (b"\x00" * 4096, ""),
], ids=["not-xml", "doctype-bomb", "empty", "other-root", "malformed", "zeros"])
def test_hostile_bytes_fail_the_xml_check_with_one_line(data: bytes, fragment: str) -> None:
    report = check_bytes(data, source="hostile")
    xml = report.check("xml")
    assert xml.outcome is Outcome.FAIL and not report.conforms and report.kind is None
    (finding,) = xml.findings
    assert fragment in finding.reason and "\n" not in finding.reason
    others = [c for c in report.checks if c.id not in ("xml", "writer.declaration")]
    assert all(c.outcome is Outcome.SKIPPED and "not readable" in c.note for c in others)


# -- the report shapes ----------------------------------------------------------------------------------


def test_json_shape_is_stable(clean) -> None:  # type: ignore[no-untyped-def]
    data, _, _ = clean
    report = ConformanceReport([check_bytes(data, source="a.edxml", today=ISSUED),
                                run(INTEROP / "status-01-arrived.edxml")], "strict")
    shape = json.loads(json.dumps(report.to_dict()))
    assert shape["schema"] == SCHEMA == "vbdt.check/1"
    assert set(shape) == {"schema", "profile", "trust", "directory", "generated", "conforms", "totals", "checks", "files"}
    assert shape["conforms"] is False and shape["totals"]["files"] == 2 and shape["totals"]["conforming"] == 1
    assert [c["id"] for c in shape["checks"]] == CHECK_IDS
    file = shape["files"][1]
    assert set(file) == {"source", "kind", "conforms", "error", "counts", "checks"}
    check = file["checks"][0]
    assert set(check) == {"id", "title", "title_vi", "outcome", "note", "why", "fix", "findings"}
    finding = next(c for c in file["checks"] if c["findings"])["findings"][0]
    assert set(finding) == {"code", "severity", "line", "path", "reason", "why", "fix"}


def test_html_escapes_everything_from_the_input() -> None:
    hostile = '<script>alert("x")</script>\x07\udcff.edxml'
    report = ConformanceReport([check_bytes(b"<b onload=x>&amp;</b>", source=hostile)])
    page = render_html(report)
    assert "<script" not in page and "onload=x>" not in page
    assert "&lt;script&gt;" in page
    tree = lxml_html.document_fromstring(page)
    assert tree.find(".//script") is None and not tree.xpath("//link | //img | //*[@src]")
    text = tree.text_content()
    assert '<script>alert("x")</script>' in text and "DOES NOT CONFORM" in text
    assert etree.tostring(tree.find(".//style"), method="text", encoding="unicode").strip().startswith("body")
