"""The visible stamps: Vietnamese text in the embedded font, Vietnam time, two boxes that do not
collide, the seal image; checked on the PDF as poppler reads and renders it (pdftotext, pdftoppm)."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from pyhanko.pdf_utils.reader import PdfFileReader

from conftest import require_tool
from vbdt.errors import PdfSignatureError
from vbdt.trust.pades import PdfVerification, sign_pdf, verify_pdf
from vbdt.trust.pki import TestPki
from vbdt.trust.samplepdf import make_pdf
from vbdt.trust.stamp import PERSON_BOX, format_time, seal_box

H14 = "000.00.00.H14"
AGENCY = "Ủy ban nhân dân tỉnh Cao Bằng"
PERSON = "Nguyễn Văn Ánh"
PAGE_HEIGHT = 842  # make_pdf: A4 portrait
RED = (200, 0, 0, 255)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestPki, Path]:
    keys = TestPki.create([(H14, AGENCY)], signer_name=PERSON)
    folder = tmp_path_factory.mktemp("pki")
    keys.write(folder)
    return keys, folder


def seal_png() -> bytes:
    """A red round seal on a transparent background, as agencies scan theirs."""
    image = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((6, 6, 234, 234), outline=RED, width=12)
    draw.ellipse((50, 50, 190, 190), outline=RED, width=5)
    draw.regular_polygon((120, 120, 30), 5, fill=RED)  # the star
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def signed(pki: tuple[TestPki, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PdfVerification]:
    keys, folder = pki
    data = sign_pdf(make_pdf(["CHI THI", "So: 05/CT-UBND"]), person=keys.signer, seal=keys.agencies[H14],
                    visible=True, seal_image=seal_png())
    path = tmp_path_factory.mktemp("stamp") / "signed.pdf"
    path.write_bytes(data)
    return path, verify_pdf(data, trust=folder / "ca.pem")


def lines_in_boxes(pdf: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """``pdftotext -bbox``: each text run with its box in PDF coordinates (origin lower left)."""
    out = subprocess.run([require_tool("pdftotext"), "-bbox", str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out)
    return [(text, (float(x1), PAGE_HEIGHT - float(y2), float(x2), PAGE_HEIGHT - float(y1)))
            for x1, y1, x2, y2, text in words]


def inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    return outer[0] <= inner[0] and inner[2] <= outer[2] and outer[1] <= inner[1] and inner[3] <= outer[3]


def test_format_time_is_vietnam_time() -> None:
    assert format_time(dt.datetime(2026, 11, 23, 7, 5, 9, tzinfo=dt.UTC)) == "23/11/2026 14:05:09 +07:00"
    # the date follows Vietnam's clock, not UTC's
    assert format_time(dt.datetime(2026, 12, 31, 20, 0, 0, 999_999, tzinfo=dt.UTC)) == "01/01/2027 03:00:00 +07:00"
    with pytest.raises(ValueError, match="naive"):
        format_time(dt.datetime(2026, 11, 23, 7, 5, 9))


def test_the_stamps_read_in_vietnamese_with_the_signing_times(signed: tuple[Path, PdfVerification]) -> None:
    path, result = signed
    assert result.original_valid, result.reasons
    person, seal = (s.signing_time for s in result.signatures)
    assert person is not None and seal is not None
    text = subprocess.run([require_tool("pdftotext"), str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert f"Ký bởi: {PERSON}" in text
    assert f"Cơ quan: {AGENCY}" in text
    assert f"Thời gian ký: {format_time(person)}" in text
    assert f"Thời gian ký:\n{format_time(seal)}" in text  # the seal's box is narrow: the time on its own line
    assert "Ủy ban nhân dân tỉnh" in text and "Cao Bằng" in text
    assert re.search(r"Thời gian ký: \d\d/\d\d/\d{4} \d\d:\d\d:\d\d \+07:00", text)


def test_the_two_stamps_sit_in_their_boxes_without_colliding(signed: tuple[Path, PdfVerification]) -> None:
    path, result = signed
    person_time, seal_time = (format_time(s.signing_time) for s in result.signatures if s.signing_time)
    stamp_lines = [(text, box) for text, box in lines_in_boxes(path) if box[1] < PERSON_BOX[3] + 1]
    seal_area = seal_box()
    seal_lines = [(text, box) for text, box in stamp_lines if box[2] <= seal_area[2]]
    person_lines = [(text, box) for text, box in stamp_lines if box[2] > seal_area[2]]
    assert [t for t, _ in seal_lines] == ["Ủy ban nhân dân tỉnh", "Cao Bằng", "Thời gian ký:", seal_time]
    assert [t for t, _ in person_lines] == [f"Ký bởi: {PERSON}", f"Cơ quan: {AGENCY}", f"Thời gian ký: {person_time}"]
    assert all(inside(box, seal_area) for _, box in seal_lines), seal_lines
    # the person's text is in the person's box, right of the seal (which covers the left third)
    assert all(inside(box, PERSON_BOX) and box[0] >= seal_area[2] for _, box in person_lines), person_lines
    for _, a in seal_lines:
        for _, b in person_lines:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_the_rendered_page_shows_the_seal_image_and_both_texts(signed: tuple[Path, PdfVerification],
                                                               tmp_path: Path) -> None:
    path, _ = signed
    subprocess.run([require_tool("pdftoppm"), "-r", "72", "-png", "-singlefile", str(path), str(tmp_path / "page")],
                   check=True)
    page = Image.open(tmp_path / "page.png").convert("RGB")
    assert page.size == (595, PAGE_HEIGHT)

    def pixels(box: tuple[int, int, int, int]) -> list[tuple[int, int, int]]:
        x1, y1, x2, y2 = box
        data = page.crop((x1, PAGE_HEIGHT - y2, x2, PAGE_HEIGHT - y1)).tobytes()
        return [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]

    def red(p: tuple[int, int, int]) -> bool:
        return p[0] > 150 and p[1] < 90 and p[2] < 90

    def dark(p: tuple[int, int, int]) -> bool:
        return max(p) < 110

    seal = pixels(seal_box())
    person_text = pixels((seal_box()[2], PERSON_BOX[1], PERSON_BOX[2], PERSON_BOX[3]))
    assert sum(map(red, seal)) > 500  # the ring and the star of the seal image
    assert sum(map(dark, seal)) > 100  # the agency's name and the time over it
    assert sum(map(dark, person_text)) > 300 and not any(map(red, person_text))
    # nothing of either stamp strays below the boxes
    _, y1, x2, _ = PERSON_BOX
    assert not any(p != (255, 255, 255) for p in pixels((seal_box()[0] - 20, y1 - 20, x2 + 20, y1 - 2)))


def test_pdfsig_still_finds_both_signatures_valid(signed: tuple[Path, PdfVerification]) -> None:
    path, _ = signed
    report = subprocess.run([require_tool("pdfsig"), str(path)], capture_output=True, text=True).stdout
    assert report.count("Signature Validation: Signature is Valid.") == 2, report


def test_the_font_is_embedded_as_a_subset(signed: tuple[Path, PdfVerification]) -> None:
    path, _ = signed
    fonts = subprocess.run([require_tool("pdffonts"), str(path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in fonts.splitlines() if "NotoSans" in line]
    assert rows and all(row[0].split("+")[0].isupper() and "yes" in row for row in rows), fonts  # subset, embedded


def test_vietnam_time_whatever_the_machine_zone(pki: tuple[TestPki, Path], monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    import tzlocal

    keys, folder = pki
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    tzlocal.reload_localzone()
    try:
        data = sign_pdf(make_pdf(["x"]), person=keys.signer, seal=None, visible=True, agency_name="Sở Tư pháp")
    finally:
        monkeypatch.undo()
        time.tzset()
        tzlocal.reload_localzone()
    path = tmp_path / "la.pdf"
    path.write_bytes(data)
    when = verify_pdf(data, trust=folder / "ca.pem").signatures[0].signing_time
    assert when is not None
    text = "\n".join(t for t, _ in lines_in_boxes(path))
    assert f"Thời gian ký: {format_time(when)}" in text and "Cơ quan: Sở Tư pháp" in text


def test_without_an_image_the_seal_is_framed(pki: tuple[TestPki, Path]) -> None:
    keys, _ = pki
    data = sign_pdf(make_pdf(["x"]), person=None, seal=keys.agencies[H14], visible=True)
    reader = PdfFileReader(io.BytesIO(data))
    field = reader.root["/AcroForm"]["/Fields"][0].get_object()
    appearance = field["/AP"]["/N"].get_object()
    assert [float(v) for v in field["/Rect"]] == [float(v) for v in seal_box()]
    assert b" re S" in appearance.data and "/XObject" not in appearance["/Resources"]


@pytest.mark.parametrize("image", [b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "huge"])
def test_a_bad_seal_image_is_refused(pki: tuple[TestPki, Path], image: bytes | str) -> None:
    keys, _ = pki
    if image == "huge":  # small on disk, but 25 million pixels
        out = io.BytesIO()
        Image.new("1", (5000, 5000)).save(out, "PNG")
        image = out.getvalue()
    assert isinstance(image, bytes)
    with pytest.raises(PdfSignatureError, match="seal image"):
        sign_pdf(make_pdf(["x"]), person=None, seal=keys.agencies[H14], visible=True, seal_image=image)
