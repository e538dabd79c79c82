"""Small real PDFs for demos, examples and tests (one page of text), written with pyHanko.

Text is drawn with a standard PDF font, which has no Vietnamese glyphs: pass ASCII (unaccented)
lines. Real documents come from a DMS; this only has to be a valid PDF to sign and check.
"""

from __future__ import annotations

import io

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

__all__ = ["make_pdf"]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str]) -> bytes:
    """A one-page A4 PDF showing ``lines`` (ASCII)."""
    writer = PdfFileWriter()
    font = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/Type1"),
                pdf_name("/BaseFont"): pdf_name("/Helvetica"),
            }
        )
    )
    ops = ["BT", "/F1 12 Tf", "14 TL", "60 780 Td"]
    for line in lines:
        ascii_line = line.encode("ascii", "replace").decode("ascii")
        ops.append(f"({_escape(ascii_line)}) Tj T*")
    ops.append("ET")
    stream = generic.StreamObject(stream_data="\n".join(ops).encode("ascii"))
    page = PageObject(
        contents=writer.add_object(stream),
        media_box=generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)]),
        resources=generic.DictionaryObject(
            {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})}
        ),
    )
    writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
