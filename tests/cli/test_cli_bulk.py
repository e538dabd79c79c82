"""``vbdt bulk send / resume / list / report`` against the real RabbitMQ, the HTML report rendered by
headless Chromium and read back with pdftotext, and every entry point's bad input."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import require_broker, require_tool
from vbdt.cli.main import main
from vbdt.exchange.broker import deprovision
from vbdt.trust.samplepdf import make_pdf

H14, C1, C2 = "000.00.00.H14", "000.00.01.H14", "000.00.02.H14"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, err: str, expected: int) -> bool:
    return code == expected and err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    require_broker()
    vhost = f"vbdt-bulk-{uuid.uuid4().hex[:8]}"
    keys = tmp_path / "keys"
    assert run("pki", "init", str(keys), "--select", H14, "--select", C1, "--select", C2)[0] == 0
    creds = tmp_path / "creds.json"
    code, _out, err = run("broker", "provision", "--select", H14, "--select", C1, "--select", C2, "--vhost", vhost, "-o", str(creds))
    assert code == 0, err
    assert run("demo", "--quick", "--out", str(tmp_path / "demo"))[0] == 0
    yield tmp_path, keys, creds
    deprovision(vhost)


def test_bulk_send_list_report_html(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys, creds = setup
    common = ["--keys", str(keys), "--credentials", str(creds)]
    h14 = ["--ledger", str(tmp / "h14.db")]
    code, out, err = run("bulk", "send", str(tmp / "demo" / "directive.edxml"), "--to", f"{H14}/**:commune",
                         "--to", "000.00.00.H99", *common, *h14, "--json")
    assert code == 1, err  # some left out (reported), the rest sent
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["event"] == "planned" and events[-1]["event"] == "run"
    summary = events[-1]
    run_id = summary["run"]
    assert summary["state"] == "done" and summary["counts"]["confirmed"] == 2 and summary["counts"]["pending"] == 0
    assert summary["counts"]["unroutable"] > 0 and "000.00.00.H99" in summary["problems"]
    code, out, err = run("bulk", "list", "--as", H14, *h14, "--json")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["run"] == run_id and listed["state"] == "done"
    code, out, _ = run("bulk", "list", "--as", H14, *h14)
    assert run_id in out and "2/" in out
    # C1 receives (its 01 goes back); the sender applies the receipt while listening
    code, _, err = run("listen", "--as", C1, "--out", str(tmp / "c1"), "--count", "1", "--idle", "20", *common,
                       "--ledger", str(tmp / "c1.db"))
    assert code == 0, err
    code, _, err = run("listen", "--as", H14, "--out", str(tmp / "h14in"), "--idle", "2", *common, *h14)
    assert code == 0, err
    code, out, err = run("bulk", "report", run_id, "--as", H14, *h14, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["totals"]["arrived"] == 1 and report["totals"]["sent"] == 1
    assert sum(report["totals"].values()) == len(report["recipients"])
    code, out, _ = run("bulk", "report", run_id, "--as", H14, *h14, "--csv")
    assert out.splitlines()[0].startswith("document_id,recipient") and len(out.splitlines()) == len(report["recipients"]) + 1
    page = tmp / "report.html"
    code, out, err = run("bulk", "report", run_id, "--as", H14, *h14, "--html", str(page))
    assert code == 0 and f"report written to {page}" in out, err
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html and "<script" not in html and "http://" not in html.split("<body", 1)[0]
    chromium, pdftotext = require_tool("chromium"), require_tool("pdftotext")
    pdf = tmp / "report.pdf"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'profile'}",
                    "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()],
                   check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(tmp)})
    text = " ".join(subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
                                   timeout=60).stdout.split())
    assert "BÁO CÁO GỬI VĂN BẢN HÀNG LOẠT" in text and "UBND TỈNH CAO BẰNG" in text.upper()
    compact = text.replace(" ", "")  # table cells wrap long identifiers
    assert run_id in compact and "05/CT-" in text and "Về việc tăng cường phòng, chống thiên tai" in text, text[:600]
    assert "Chưa xác nhận đã nhận" in text and C2 in compact and "không có hộp thư" in text
    assert "000.00.00.H99" in compact  # the selector left out
    assert "1/" in text  # the bar chart's label: answered of total for Cao Bằng
    # --watch prints the totals until every copy is answered (or has no inbox): C2 answers now
    code, _, err = run("listen", "--as", C2, "--out", str(tmp / "c2"), "--count", "1", "--idle", "20", *common,
                       "--ledger", str(tmp / "c2.db"))
    assert code == 0, err
    code, _, err = run("listen", "--as", H14, "--out", str(tmp / "h14in"), "--idle", "2", *common, *h14)
    assert code == 0, err
    code, out, err = run("bulk", "report", run_id, "--as", H14, *h14, "--watch", "--every", "0.2")
    assert code == 0, err
    assert out.count("answered") == 1 and "2/" in out and "arrived 2" in out


def test_bulk_manifest_checks_every_row_first(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys, creds = setup
    common = ["--as", H14, "--keys", str(keys), "--credentials", str(creds), "--ledger", str(tmp / "h14.db")]
    (tmp / "a.pdf").write_bytes(make_pdf(["CONG VAN 1"]))
    (tmp / "b.pdf").write_bytes(make_pdf(["CONG VAN 2"]))
    (tmp / "fake.pdf").write_bytes(b"<html>not a pdf</html>")
    header = "number,notation,date,subject,type_name,pdf,to\n"
    broken = tmp / "broken.csv"
    broken.write_text(header + f"11,CV-UBND,23/11/2026,Về việc A,Công văn,a.pdf,{C1}\n"
                      f"12,CV-UBND,23/11/2026,Về việc B,Công văn,fake.pdf,{C1}\n"
                      f"13,CV-UBND,31/02/2026,Về việc C,Công văn,b.pdf,{C1}\n"
                      f"14,CV-UBND,23/11/2026,,Công văn,b.pdf,{C1}\n"
                      f"15,CV-UBND,23/11/2026,Về việc E,Công văn,missing.pdf,{C1}\n", encoding="utf-8")
    code, _, err = run("bulk", "send", "--manifest", str(broken), *common)
    assert one_line_error(code, err, 2), err
    for line, why in ((3, "not a PDF"), (4, "not a date"), (5, "empty subject"), (6, "missing.pdf")):
        assert f"line {line}: " in err and why in err, (line, err)
    assert "line 2" not in err and "4 broken row(s), nothing sent" in err
    assert not (tmp / "h14.bulk.db").exists()  # nothing journaled, nothing sent
    good = tmp / "good.csv"
    good.write_text(header + f"21,CV-UBND,23/11/2026,Về việc A,Công văn,a.pdf,{C1} {C2}\n"
                    f"22,CV-UBND,2026-11-23,Về việc B,Công văn,b.pdf,{C2}\n", encoding="utf-8")
    code, out, err = run("bulk", "send", "--manifest", str(good), *common)
    assert code == 0, err
    assert "3 of 3 copies confirmed by the broker" in out
    code, out, _ = run("bulk", "list", "--as", H14, "--ledger", str(tmp / "h14.db"), "--json")
    (listed,) = json.loads(out)
    assert listed["documents"] == 2 and listed["counts"]["confirmed"] == 3
    code, out, err = run("bulk", "resume", listed["run"], *common[2:], "--as", H14)
    assert code == 0 and "3 of 3 copies confirmed" in out, err


def test_bulk_commands_fail_with_one_line(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys, creds = setup
    common = ["--as", H14, "--keys", str(keys), "--credentials", str(creds), "--ledger", str(tmp / "h14.db")]
    directive = str(tmp / "demo" / "directive.edxml")
    (tmp / "not-utf8.csv").write_bytes(b"number,notation\n\xff\xfe\n")
    (tmp / "no-columns.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    cases = [
        (2, ["bulk", "send", *common]),                                       # neither FILE nor --manifest
        (2, ["bulk", "send", directive, *common]),                            # FILE without --to
        (2, ["bulk", "send", directive, "--manifest", "x.csv", *common]),     # both
        (2, ["bulk", "send", directive, "--to", "000.00.00.H99", *common]),   # selects nobody: nothing sent
        (2, ["bulk", "send", directive, "--to", "::bad::", *common]),
        (2, ["bulk", "send", "--manifest", str(tmp / "not-utf8.csv"), *common]),
        (2, ["bulk", "send", "--manifest", str(tmp / "no-columns.csv"), *common]),
        (2, ["bulk", "send", "--manifest", str(tmp / "missing.csv"), *common]),
        (69, ["bulk", "send", directive, "--to", C1, "--as", H14, "--keys", str(keys), "--amqp", "amqp://guest:guest@127.0.0.1:1/",
              "--ledger", str(tmp / "h14.db")]),
        (2, ["bulk", "resume", "20260101-000000-000000", *common]),
        (2, ["bulk", "list", "--as", H14, "--ledger", str(tmp / "nowhere.db")]),
        (2, ["bulk", "list", "--as", "../../etc", "--ledger", str(tmp / "h14.db")]),
        (2, ["bulk", "report", "nosuch", "--as", H14, "--ledger", str(tmp / "h14.db")]),
    ]
    for expected, args in cases:
        code, _, err = run(*args)
        assert one_line_error(code, err, expected), (args, code, err)
    code, out, err = run("bulk", "send", directive, "--to", C1, *common)
    assert code == 0, err
    run_id = out.split()[2].rstrip(":")
    for args in (["--json", "--csv"], ["--html", str(tmp)], ["--html", str(tmp / "no" / "dir.html")]):
        code, _, err = run("bulk", "report", run_id, "--as", H14, "--ledger", str(tmp / "h14.db"), *args)
        assert one_line_error(code, err, 2), (args, err)


def test_bulk_send_preflight_refuses_before_connecting(setup) -> None:  # type: ignore[no-untyped-def]
    """The send pre-flight runs on every document before anything is journaled or published, and
    before connecting: an unreachable broker (--amqp to port 1) is never reached when it fails."""
    import shutil

    from vbdt.edxml.resources import example_directory_path
    from vbdt.trust.keys import SigningKey
    from vbdt.trust.xmldsig import sign

    tmp, keys, _creds = setup
    nowhere = ["--amqp", "amqp://guest:guest@127.0.0.1:1/", "--ledger", str(tmp / "h14.db")]
    common = ["--as", H14, "--keys", str(keys), *nowhere]
    (tmp / "a.pdf").write_bytes(make_pdf(["CONG VAN 1"]))
    code, _, err = run("pdf", "sign", str(tmp / "a.pdf"), "-o", str(tmp / "c1.pdf"), "--signer-key", str(keys / "signer.key.pem"),
                       "--signer-cert", str(keys / "signer.cert.pem"), "--seal-key", str(keys / f"{C1}.key.pem"),
                       "--seal-cert", str(keys / f"{C1}.cert.pem"))
    assert code == 0, err  # original-valid, but C1's: not a PDF H14 may send as its own
    header = "number,notation,date,subject,type_name,pdf,to\n"
    manifest = tmp / "rows.csv"
    manifest.write_text(header + f"31,CV-UBND,23/11/2026,Về việc A,Công văn,a.pdf,{C1}\n"
                        f"32,CV-UBND,23/11/2026,Về việc B,Công văn,c1.pdf,{C1}\n"
                        f"3A,CV-UBND,23/11/2026,Về việc C,Công văn,a.pdf,{C2}\n"
                        f"34,CV-UBND,23/11/2026,Về việc D,Công văn,a.pdf,{C1} {C2}\n", encoding="utf-8")
    code, _, err = run("bulk", "send", "--manifest", str(manifest), *common)
    assert one_line_error(code, err, 1), err
    assert "2 row(s) fail the pre-flight, nothing sent" in err and "line 3: " in err and "line 4: " in err, err
    assert C1 in err.split("line 3: ")[1] and "EDX202" in err.split("line 4: ")[1], err  # C1's seal; CodeNumber 3A
    assert "line 2" not in err and "line 5" not in err
    assert not (tmp / "h14.bulk.db").exists()  # nothing journaled
    # an unsigned PDF with no person's key to sign it: refused, unless --force (then only the broker is missing)
    bare = tmp / "keys-without-signer"
    shutil.copytree(keys, bare)
    for name in ("signer.key.pem", "signer.cert.pem"):
        (bare / name).unlink()
    good = tmp / "good.csv"
    good.write_text(header + f"41,CV-UBND,23/11/2026,Về việc A,Công văn,a.pdf,{C1}\n", encoding="utf-8")
    code, _, err = run("bulk", "send", "--manifest", str(good), "--as", H14, "--keys", str(bare), *nowhere)
    assert one_line_error(code, err, 1) and "line 2: " in err and "not signed" in err, err
    code, _, err = run("bulk", "send", "--manifest", str(good), "--as", H14, "--keys", str(bare), *nowhere, "--force")
    assert one_line_error(code, err, 69), err
    # FILE: signed already by another agency, signed and then changed, not from --as, a key that is not the certificate's
    directive = (tmp / "demo" / "directive.edxml").read_bytes()
    foreign, tampered = tmp / "foreign.edxml", tmp / "tampered.edxml"
    foreign.write_bytes(sign(directive, SigningKey.from_pem(keys / f"{C1}.key.pem", keys / f"{C1}.cert.pem")))
    signed = sign(directive, SigningKey.from_pem(keys / f"{H14}.key.pem", keys / f"{H14}.cert.pem"))
    tampered.write_bytes(signed.replace("phòng, chống".encode(), "phòng, chống, ".encode(), 1))
    swapped = tmp / "keys-swapped"
    shutil.copytree(keys, swapped)
    shutil.copy(keys / f"{C1}.key.pem", swapped / f"{H14}.key.pem")
    directory = ["--directory", str(example_directory_path())]
    for expected, args in (
        (1, [str(foreign), "--to", C1, *common, *directory]),
        (1, [str(tampered), "--to", C1, *common]),
        (2, [str(tmp / "demo" / "directive.edxml"), "--to", C2, "--as", C1, "--keys", str(keys), *nowhere]),
        (2, [str(tmp / "demo" / "directive.edxml"), "--to", C1, "--as", H14, "--keys", str(swapped), *nowhere]),
    ):
        code, _, err = run("bulk", "send", *args)
        assert one_line_error(code, err, expected), (args, err)
        assert not (tmp / "h14.bulk.db").exists()
