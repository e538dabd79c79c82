"""The command line against hostile paths, devices, pipes, URLs and DocumentIds (issue 9, points 13 and 15).

Every case asserts the documented exit code, ONE stderr line starting with ``vbdt:``, no
traceback, and that the next good input still works.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import H14, H54_COMMUNES, H54_DISTRICT, Network, fresh_vhost
from vbdt.cli.demo import compose
from vbdt.cli.exchange import store_received
from vbdt.cli.exits import exit_code_for, one_line
from vbdt.cli.files import NAME_MAX, inbox_name, read_input, write_output
from vbdt.cli.main import main
from vbdt.errors import (
    AccessRefused,
    DocumentTooLarge,
    KeyFileError,
    LedgerError,
    PublishRefused,
    QueueFull,
    SignatureInvalid,
    TransportError,
    UnknownAgency,
    UsageError,
)
from vbdt.exchange.ledger import SqliteLedger
from vbdt.trust.samplepdf import make_pdf

KEY, CERT = f"{H14}.key.pem", f"{H14}.cert.pem"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def process(*args: str, timeout: float = 60, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbdt", *args], capture_output=True, text=True, timeout=timeout,
                          **options)  # type: ignore[call-overload, no-any-return]


def assert_one_line(code: int, err: str, expected: int, fragment: str = "") -> None:
    assert code == expected, (code, err)
    assert err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a TEST PKI (keys/), an edXML document and a PDF: the good inputs."""
    folder = tmp_path_factory.mktemp("hostile")
    assert run("pki", "init", str(folder / "keys"), "--select", H14)[0] == 0
    assert run("demo", "--quick", "--out", str(folder / "demo"))[0] == 0
    (folder / "in.pdf").write_bytes(make_pdf(["CONG VAN"]))
    return folder


def sign_args(files: Path, out: str) -> list[str]:
    return ["sign", str(files / "demo" / "directive.edxml"), "-o", out,
            "--key", str(files / "keys" / KEY), "--cert", str(files / "keys" / CERT)]


def test_the_good_path_works_after_every_refusal(files: Path, tmp_path: Path) -> None:
    signed = tmp_path / "signed.edxml"
    code, _, err = run(*sign_args(files, str(signed)))
    assert code == 0, err
    assert run("verify", str(signed), "--trust", str(files / "keys" / "ca.pem"))[0] == 0


@pytest.mark.parametrize(("case", "expected", "fragment"), [
    (["verify", "{doc}", "--trust", "{keys}"], 2, "is a folder"),
    (["pdf", "verify", "{pdf}", "--trust", "{keys}"], 2, "is a folder"),
    (["verify", "{doc}", "--trust", "/dev/zero"], 2, "not a regular file"),
    (["sign", "{doc}", "-o", "{tmp}/x", "--key", "{keys}", "--cert", "{keys}/ca.pem"], 2, "is a folder"),
    (["sign", "{doc}", "-o", "{tmp}/missing/x", "--key", "{keys}/" + KEY, "--cert", "{keys}/" + CERT], 2, "does not exist"),
    (["sign", "{doc}", "-o", "{tmp}", "--key", "{keys}/" + KEY, "--cert", "{keys}/" + CERT], 2, "is a folder"),
    (["sign", "{doc}", "-o", "{doc}/x", "--key", "{keys}/" + KEY, "--cert", "{keys}/" + CERT], 2, "is not a folder"),
    (["pdf", "sign", "{pdf}", "-o", "{tmp}/missing/x.pdf", "--seal-key", "{keys}/" + KEY, "--seal-cert", "{keys}/" + CERT],
     2, "does not exist"),
    (["send", "{doc}", "--keys", "{keys}", "--amqp", "not-a-url"], 2, "not an AMQP URL"),
    (["send", "{doc}", "--keys", "{keys}", "--amqp", "amqp://"], 2, "not an AMQP URL"),
    (["send", "{doc}", "--keys", "{keys}", "--amqp", "amqp://host:port/"], 2, "not a URL"),
    (["send", "{doc}", "--keys", "{doc}"], 2, "not a folder"),
    (["send", "{doc}", "--keys", "{keys}", "--credentials", "/dev/zero"], 2, "not a regular file"),
    (["listen", "--as", H14, "--keys", "{keys}", "--out", "{doc}"], 2, "is a file"),
    (["listen", "--as", "../../x", "--keys", "{keys}"], 2, "invalid OrganId"),
    (["demo", "--quick", "--out", "{doc}"], 2, "is a file"),
    (["demo", "--amqp", "http://127.0.0.1/", "--out", "{tmp}"], 2, "not an AMQP URL"),
    (["pki", "init", "{doc}"], 2, "is a file"),
    (["broker", "provision", "--select", H14, "-o", "{tmp}"], 2, "is a folder"),
    (["validate", "--directory", "{keys}", "{doc}"], 2, "is a folder"),
    (["status", "--as", H14, "--ledger", "{keys}"], 2, "is a folder"),
    (["listen", "--as", H14, "--keys", "{keys}", "--count", "0"], 2, "--count"),
])
def test_hostile_paths_and_urls(files: Path, tmp_path: Path, case: list[str], expected: int, fragment: str) -> None:
    args = [a.format(doc=files / "demo" / "directive.edxml", keys=files / "keys", pdf=files / "in.pdf", tmp=tmp_path)
            for a in case]
    code, _, err = run(*args)
    assert_one_line(code, err, expected, fragment)
    assert not (tmp_path / "missing").exists()  # never created by surprise


def test_status_as_a_path_touches_no_file(files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "a" / "b"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    code, _, err = run("status", "--as", "../../x")
    assert_one_line(code, err, 2, "invalid OrganId")
    assert list(tmp_path.rglob("x.db")) == [] and not (here / ".vbdt").exists()


def test_status_refuses_an_unrelated_sqlite_file(files: Path, tmp_path: Path) -> None:
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    before = other.read_bytes()
    for command in (["status", "--as", H14, "--ledger", str(other)],
                    ["listen", "--as", H14, "--keys", str(files / "keys"), "--ledger", str(other)]):
        code, _, err = run(*command)
        assert code == 2 and err.startswith("vbdt: ") and err.count("\n") == 1, err
    assert other.read_bytes() == before  # no vbdt table was added
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 100)
    assert_one_line(*run("status", "--as", H14, "--ledger", str(garbage))[::2], 2, "not a vbdt ledger")
    # a real ledger still reads
    SqliteLedger(tmp_path / "real.db").close()
    code, out, err = run("status", "--as", H14, "--ledger", str(tmp_path / "real.db"), "--json")
    assert code == 0 and json.loads(out)["documents"] == [], err


@pytest.mark.parametrize("command", [
    ["validate", "/dev/zero"], ["inspect", "/dev/zero"], ["sign", "/dev/zero", "-o", "{tmp}/o", "--key", "k", "--cert", "c"],
    ["verify", "/dev/zero", "--trust", "{keys}/ca.pem"], ["pdf", "verify", "/dev/zero", "--trust", "{keys}/ca.pem"],
    ["pdf", "sign", "/dev/zero", "-o", "{tmp}/o.pdf", "--seal-key", "{keys}/" + KEY, "--seal-cert", "{keys}/" + CERT],
    ["send", "/dev/zero", "--keys", "{keys}"],
])
def test_dev_zero_is_refused_quickly_and_bounded(files: Path, tmp_path: Path, command: list[str]) -> None:
    args = [a.format(keys=files / "keys", tmp=tmp_path) for a in command]
    started = time.monotonic()
    result = process("--max-bytes", "1000000", *args)
    assert_one_line(result.returncode, result.stderr, 2, "over the limit of 1000000 bytes")
    assert time.monotonic() - started < 30


def test_read_input_never_trusts_stat(tmp_path: Path) -> None:
    with pytest.raises(DocumentTooLarge):
        read_input("/dev/zero", limit=4096)
    assert read_input("/dev/null") == b""
    with pytest.raises(UsageError, match="is a folder"):
        read_input(tmp_path)
    (tmp_path / "ok").write_bytes(b"x" * 4096)
    assert read_input(tmp_path / "ok", limit=4096) == b"x" * 4096  # exactly the limit is fine


def test_fifo_without_writer_does_not_hang_and_a_pipe_is_read(files: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = process("validate", str(fifo), timeout=30)
    assert_one_line(result.returncode, result.stderr, 2)
    document = (files / "demo" / "directive.edxml").read_bytes()
    result = subprocess.run([sys.executable, "-m", "vbdt", "validate", "/dev/stdin"], input=document,
                            capture_output=True, timeout=60)
    assert result.returncode == 0 and b"valid (0 errors" in result.stdout, result.stderr


@pytest.mark.parametrize("command", [["directory", "select", "--national", "**:commune"], ["--help"]])
def test_broken_pipe_is_quiet(command: list[str]) -> None:
    child = subprocess.Popen([sys.executable, "-m", "vbdt", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader went away, as `| head` does
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_status_into_a_closed_pipe(tmp_path: Path) -> None:
    code, _, err = run("demo", "--out", str(tmp_path))
    assert code == 0, err
    ledger = tmp_path / "ledgers" / "000.00.00.G22.db"
    child = subprocess.Popen([sys.executable, "-m", "vbdt", "status", "--as", "000.00.00.G22", "--ledger", str(ledger)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 0 and err == "", err
    assert "000.00.00.G22" in process("status", "--as", "000.00.00.G22", "--ledger", str(ledger)).stdout


def test_a_broken_pdf_is_one_line(files: Path, tmp_path: Path) -> None:
    signed = tmp_path / "signed.pdf"
    assert run("pdf", "sign", str(files / "in.pdf"), "-o", str(signed), "--seal-key", str(files / "keys" / KEY),
               "--seal-cert", str(files / "keys" / CERT))[0] == 0
    data = signed.read_bytes()
    start = data.index(b"/Contents <") + 11
    broken = {
        "truncated": data[: len(data) // 2],
        "signature": data[:start] + b"00" + data[start + 2:],
        "xref": data.replace(b"startxref", b"startxrex"),
    }
    for name, body in broken.items():
        (tmp_path / f"{name}.pdf").write_bytes(body)
        result = process("pdf", "verify", str(tmp_path / f"{name}.pdf"), "--trust", str(files / "keys" / "ca.pem"))
        assert_one_line(result.returncode, result.stderr, 1)
    assert process("pdf", "verify", str(signed), "--trust", str(files / "keys" / "ca.pem")).returncode == 1  # seal only


# -- listen: store, then claim (issue 9, point 13) --------------------------------------------------------------

HOSTILE_IDS = [
    f"{H14},2026/11/23," + "9" * 3000 + "/QĐ-UBND",
    "../../../../etc/passwd",
    "..",
    ".hidden",
    "a\x00b\x01c\x7f/\\:*?\"<>|",
    "Quyết định số 5/QĐ-UBND về việc phòng, chống thiên tai " * 20,
    "ặ" * 400,
    "",
]


@pytest.mark.parametrize("document_id", HOSTILE_IDS)
def test_inbox_names_are_safe_and_unique(tmp_path: Path, document_id: str) -> None:
    names = {inbox_name(H14, document_id, kind) for kind in ("document", "update", "recall:20261123080000")}
    names.add(inbox_name("000.00.00.H54", document_id, "document"))
    assert len(names) == 4  # a recall never overwrites the document it recalls; senders never collide
    for name in names:
        assert len(name.encode()) <= NAME_MAX and "/" not in name and "\x00" not in name and not name.startswith(".")
        write_output(tmp_path / name, b"<x/>")  # the file system takes it
        assert (tmp_path / name).read_bytes() == b"<x/>"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temporary file left


def test_a_failed_write_leaves_the_item_to_the_next_listen(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "c1.db")
    document_id = HOSTILE_IDS[0]
    ledger.store_incoming(H14, document_id, "document", "m-1", b"<edXML/>")
    assert ledger.claim_handover(H14, document_id, "document")  # as the client hands it over
    missing = tmp_path / "gone"
    with pytest.raises(FileNotFoundError):
        store_received(ledger, H14, document_id, "document", missing)
    assert [i.document_id for i in ledger.unhanded()] == [document_id]  # not lost: handed over again next time
    missing.mkdir()
    path = store_received(ledger, H14, document_id, "document", missing)
    assert path.parent == missing and path.read_bytes() == b"<edXML/>"
    assert ledger.unhanded() == [] and not ledger.claim_handover(H14, document_id, "document")  # claimed once stored
    ledger.close()


@pytest.mark.parametrize("network", ["memory"], indirect=True)
async def test_a_recall_is_stored_beside_the_document(network: Network, tmp_path: Path) -> None:
    sender = await network.agency(H54_DISTRICT)
    receiver = await network.agency(H54_COMMUNES[0], pump=False)
    document = compose(network.directory, H54_DISTRICT, [H54_COMMUNES[0]], number="1234", notation="QĐ-UBND",
                       type_name="Quyết định", subject="Về việc thu hồi văn bản", issued=date.today())
    sent = await sender.send(document)
    await sender.recall(sent.document_id, "Văn bản ban hành sai thể thức")
    inbox = receiver.inbox()
    folder = tmp_path / "inbox"
    folder.mkdir()
    paths = {}
    for _ in range(2):
        item = await anext(inbox)
        paths[item.kind] = store_received(receiver.ledger, item.sender, item.document_id, item.stored_as, folder)
    await inbox.aclose()  # type: ignore[attr-defined]
    assert set(paths) == {"document", "recall"} and paths["document"] != paths["recall"]
    assert paths["document"].name.startswith("000.00.01.H54_") and "1234_QĐ-UBND.document." in paths["document"].name
    assert sent.document_id.encode() in paths["document"].read_bytes() and b"<ds:Signature" in paths["document"].read_bytes()
    assert "Văn bản ban hành sai thể thức".encode() in paths["recall"].read_bytes()
    assert sorted(folder.iterdir()) == sorted(paths.values())  # both files kept


def test_listen_ends_without_orphan_tasks(files: Path, tmp_path: Path) -> None:
    with fresh_vhost([H14]) as done:
        creds = tmp_path / "creds.json"
        creds.write_text(json.dumps(done.urls))
        result = process("listen", "--as", H14, "--keys", str(files / "keys"), "--credentials", str(creds),
                         "--out", str(tmp_path / "inbox"), "--ledger", str(tmp_path / "h14.db"), "--idle", "1")
    assert result.returncode == 0, result.stderr
    assert "never retrieved" not in result.stderr and "StopAsyncIteration" not in result.stderr, result.stderr


# -- the exit codes: one table, one mapping ---------------------------------------------------------------------

def test_every_exit_code_is_documented_once_in_the_table() -> None:
    import importlib

    from vbdt.cli import exits

    main_module = importlib.import_module("vbdt.cli.main")  # vbdt.cli.main is also the name of the group

    table = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    codes = {getattr(exits, name) for name in exits.__all__ if name.startswith("EXIT_")}
    assert codes == {0, 1, 2, 69, 70, 75, 77, 130}
    for code in codes:
        assert table.count(f"\n| {code} |") == 1 and f"\n{code:<5}  " in (main_module.__doc__ or ""), code


@pytest.mark.parametrize(("error", "code"), [
    (AccessRefused("connecting: access refused"), 77),
    (PermissionError(errno.EACCES, "Permission denied", "x"), 77),
    (QueueFull("inbox full"), 75),
    (OSError(errno.ENOSPC, "No space left on device", "x"), 75),
    (TransportError("cannot reach the broker"), 69),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x"), 2),
    (OSError(errno.ENAMETOOLONG, "File name too long", "x"), 2),
    (LedgerError("not a ledger"), 2),
    (KeyFileError("not a key"), 2),
    (UsageError("bad"), 2),
    (SignatureInvalid("changed"), 1),
    (UnknownAgency("000.00.00.X99"), 1),
    (PublishRefused("too large"), 1),
    (KeyboardInterrupt(), 130),
    (ZeroDivisionError(), 70),
])
def test_exit_code_for(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code
    assert "\n" not in one_line(error)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes")
def test_a_folder_without_write_permission_exits_77(files: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run(*sign_args(files, str(locked / "x.edxml")))
    assert_one_line(code, err, 77, "Permission denied")
