"""vbdt new: a package from a PDF and metadata, ready for vbdt send; hostile options refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from vbdt.cli.main import main
from vbdt.edxml.codes import Priority, SteeringType
from vbdt.edxml.model import Document
from vbdt.edxml.validation import read
from vbdt.trust.pades import verify_pdf
from vbdt.trust.samplepdf import make_pdf
from vbdt.trust.xmldsig import verify

H14, C1, C2 = "000.00.00.H14", "000.00.01.H14", "000.00.02.H14"
NO_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("new")
    keys = tmp / "keys"
    assert run("pki", "init", str(keys), "--select", H14, "--select", C1)[0] == 0
    (tmp / "cv.pdf").write_bytes(make_pdf(["UBND TINH CAO BANG", "So: 12/UBND-VP", "CONG VAN"]))
    return tmp, keys


def base(tmp: Path, out: str, *extra: str) -> list[str]:
    return ["new", str(tmp / "cv.pdf"), "-o", str(tmp / out), "--as", H14, "--to", C1, "--to", C2,
            "--number", "12", "--notation", "UBND-VP", "--type", "Công văn",
            "--subject", "Về việc phòng, chống thiên tai", *extra]


def test_new_builds_a_valid_package_that_send_accepts(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    code, out, err = run(*base(tmp, "cv.edxml", "--issued", "2026-03-02", "--due", "2026-03-16", "--priority",
                               "very-urgent", "--steering", "directive", "--signer-name", "Nguyễn Văn A",
                               "--signer-position", "Chủ tịch", "--signer-competence", "TM. ỦY BAN NHÂN DÂN",
                               "--place", "Cao Bằng", "--pages", "1"))
    assert code == 0, err
    assert "2 recipients" in out
    document = read((tmp / "cv.edxml").read_bytes())
    assert isinstance(document, Document)
    assert str(document.sender.organ_id) == H14 and [str(r.organ_id) for r in document.recipients] == [C1, C2]
    assert str(document.code) == "12/UBND-VP" and document.subject == "Về việc phòng, chống thiên tai"
    assert document.promulgation.date.isoformat() == "2026-03-02" and document.promulgation.place == "Cao Bằng"
    assert document.due_date is not None and document.due_date.isoformat() == "2026-03-16"
    assert document.other_info.priority is Priority.VERY_URGENT and document.steering_type is SteeringType.DIRECTIVE
    assert document.signer is not None and document.signer.full_name == "Nguyễn Văn A"
    (attachment,) = document.attachments
    assert attachment.name == "cv.pdf" and attachment.read() == (tmp / "cv.pdf").read_bytes()
    # unsigned: vbdt send signs the PDF and the envelope; its pre-flight lets it through to the broker step
    code, _, err = run("send", str(tmp / "cv.edxml"), "--keys", str(keys), "--amqp", NO_BROKER,
                       "--ledger", str(tmp / "send.db"))
    assert code == 69, err


def test_new_signs_the_pdf_with_stamps_and_the_envelope(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    image = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((4, 4, 116, 116), outline=(200, 0, 0, 255), width=8)
    image.save(tmp / "seal.png")
    code, _, err = run(*base(tmp, "signed.edxml", "--sign", "--keys", str(keys), "--seal-image", str(tmp / "seal.png"),
                             "--agency-name", "Ủy ban nhân dân tỉnh Cao Bằng", "--signer-name", "Nguyễn Văn A"))
    assert code == 0, err
    verified = verify((tmp / "signed.edxml").read_bytes(), trust=keys / "ca.pem")
    assert verified.agency == H14
    assert isinstance(verified.package, Document)
    (attachment,) = verified.package.attachments
    pdf = attachment.read()
    assert b"/Subtype /Image" in pdf or b"/Subtype/Image" in pdf  # the seal image is drawn
    result = verify_pdf(pdf, trust=keys / "ca.pem", agency=H14)
    assert result.original_valid and [s.role for s in result.signatures] == ["person", "agency"]
    # signed already and intact: send verifies it, and lets it through to the broker step
    code, _, err = run("send", str(tmp / "signed.edxml"), "--keys", str(keys), "--amqp", NO_BROKER,
                       "--ledger", str(tmp / "send-signed.db"))
    assert code == 69, err


def test_new_without_a_person_key_does_not_sign(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    folder = tmp_path / "keys"
    shutil.copytree(keys, folder)
    (folder / "signer.key.pem").unlink()
    code, _, err = run(*base(tmp, "nokey.edxml", "--sign", "--keys", str(folder)))
    assert code == 2 and "person's key" in err and err.count("\n") == 1, err
    assert not (tmp / "nokey.edxml").exists()


@pytest.mark.parametrize("change,expected,words", [
    ({"pdf": "text"}, 2, "not a PDF"),
    ({"pdf": "missing"}, 2, "missing.pdf"),
    ({"--issued": "2026-02-30"}, 2, "not a date"),
    ({"--due": "next week"}, 2, "not a date"),
    ({"--due": "2020-01-01", "--issued": "2026-01-01"}, 2, "before --issued"),
    ({"--to": "000.00.99.H14"}, 1, "000.00.99.H14"),
    ({"--to": "not a selector!"}, 1, "not a selector!"),
    ({"--to": H14}, 2, "no recipient other than the sender"),
    ({"--as": "000.00.00.X99"}, 1, "000.00.00.X99"),
    ({"--priority": "whenever"}, 2, "--priority"),
    ({"--number": None}, 2, "--number"),
    ({"--subject": None}, 2, "--subject"),
    ({"--visible": ""}, 2, "go with --sign"),
    ({"--subject": ""}, 1, "Subject"),
])
def test_hostile_input_is_refused_in_one_line(setup, change: dict[str, str | None], expected: int, words: str) -> None:  # type: ignore[no-untyped-def]
    tmp, _keys = setup
    (tmp / "text.pdf").write_bytes(b"this is a text file, not a PDF\n")
    options: dict[str, str | None] = {"--as": H14, "--to": C1, "--number": "12", "--notation": "UBND-VP",
                                      "--type": "Công văn", "--subject": "Về việc thử"}
    pdf = tmp / f"{change.pop('pdf', 'cv')}.pdf"
    options.update(change)
    args = ["new", str(pdf), "-o", str(tmp / "hostile.edxml")]
    for name, value in options.items():
        if value is None:
            continue
        args += [name] if value == "" and name == "--visible" else [name, value]
    code, _, err = run(*args)
    assert code == expected, err
    assert err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert words.lower() in err.lower(), err
    assert not (tmp / "hostile.edxml").exists()
