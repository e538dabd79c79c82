"""The visible stamps of the PAdES signatures: Vietnamese text, Vietnam time, an optional seal image.

:func:`vbdt.trust.pades.sign_pdf` with ``visible=True`` draws two boxes at the lower right of the
page (A4 portrait, where Vietnamese documents carry the signature block):

- the **person's box** (:data:`PERSON_BOX`): ``Ký bởi`` (the certificate's common name),
  ``Cơ quan`` (the agency) and ``Thời gian ký`` (the signing time), laid out in its right two
  thirds;
- the **seal's box** (:func:`seal_box`): a square over the left third of the person's box, as the
  annex of Decree 30/2020 places the seal, with the agency's name and the signing time, drawn over
  the seal image when one is given (a PNG of the red round seal, for instance).

The two texts never collide: the person's text starts where the seal's box ends.

The text is set in Noto Sans, a free Unicode TrueType font shipped in ``vbdt/trust/fonts``
under its licence, the SIL Open Font License 1.1 (``fonts/LICENSE``); pyHanko embeds the subset
of glyphs a stamp uses, so any reader shows the diacritics without the font installed. (The font
must have 1000 units per em: pyHanko 0.38 writes the glyph widths of an embedded TrueType font
unscaled, so a 2048-unit font such as DejaVu Sans is drawn twice too wide.) Times are shown in Vietnam time
(UTC+7): ``Thời gian ký: 23/11/2026 14:05:09 +07:00``, the very time the signature claims
(its ``signingTime`` attribute), whatever the time zone of the machine that signs.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.stamp import TextStampStyle

from vbdt.errors import PdfSignatureError

__all__ = [
    "FONT_FILE",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "PERSON_BOX",
    "VIETNAM_TIME",
    "Box",
    "StampText",
    "font_path",
    "format_time",
    "person_style",
    "person_text",
    "person_text_left",
    "seal_box",
    "seal_style",
    "seal_text",
]

Box = tuple[int, int, int, int]
"""``(x1, y1, x2, y2)`` in PDF points, origin at the lower left of the page."""

VIETNAM_TIME = dt.timezone(dt.timedelta(hours=7), "+07:00")
"""Indochina Time, UTC+7 all year (Vietnam has no daylight saving time)."""

FONT_FILE = "NotoSans-Regular.ttf"
"""The stamp font, in ``vbdt/trust/fonts``."""

PERSON_BOX: Box = (300, 70, 561, 170)
"""The person's signature box: A4 portrait, lower right (its width a multiple of 3, so that a third
of it is a whole number of points)."""

FONT_SIZE = 7
MAX_IMAGE_BYTES = 8 * 1024 * 1024
"""Largest seal image file accepted."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest seal image accepted, in pixels (a seal is a few hundred pixels wide)."""

_MARGIN = 4
_TIME_FORMAT = "%d/%m/%Y %H:%M:%S"
# pyHanko formats the signing time with the style's strftime format before the style sees it:
# an ISO form loses nothing, and the style turns it into Vietnam time.
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


class _QuietSubsetting(logging.Filter):
    """fontTools warns of every font table it cannot subset and drops (timestamps, hinting
    programs): nothing a stamp needs, and nothing a user should read on stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NOT subset" not in record.getMessage()


logging.getLogger("fontTools.subset").addFilter(_QuietSubsetting())


def font_path() -> Path:
    """The packaged font file (a real file: pyHanko opens it by name)."""
    path = Path(str(resources.files("vbdt.trust") / "fonts" / FONT_FILE))
    if not path.is_file():  # a broken installation, not an input problem
        raise PdfSignatureError(f"the stamp font {path} is missing from the vbdt installation")
    return path


def format_time(when: dt.datetime) -> str:
    """``23/11/2026 14:05:09 +07:00``: a time as shown on the stamps, in Vietnam time."""
    if when.tzinfo is None:
        raise ValueError("a naive datetime has no defined Vietnam time")
    return f"{when.astimezone(VIETNAM_TIME).strftime(_TIME_FORMAT)} +07:00"


def seal_box(person: Box = PERSON_BOX) -> Box:
    """The seal's square: as high as the person's box, its right edge at a third of that box.

    It covers the left third of the person's box (Decree 30/2020, annex I) and reaches beyond it
    on the left, so that a round seal of that height fits.
    """
    x1, y1, x2, y2 = person
    side = y2 - y1
    third = x1 + (x2 - x1) // 3
    return third - side, y1, third, y2


def person_text_left(person: Box = PERSON_BOX) -> int:
    """Where the person's text starts (page x): past the seal's box, so the two never collide."""
    return seal_box(person)[2] + _MARGIN


@dataclass(frozen=True)
class StampText:
    """What a stamp says, before the signing time is known."""

    lines: tuple[str, ...]
    """The lines above the time (already wrapped)."""
    time_label: str = "Thời gian ký:"
    time_on_own_line: bool = False
    """Put the time below its label (narrow boxes)."""

    def template(self) -> str:
        """pyHanko's stamp template: ``%`` escaped in our text, ``%(ts)s`` where the time goes."""
        escaped = [line.replace("%", "%%") for line in self.lines]
        sep = "\n" if self.time_on_own_line else " "
        return "\n".join([*escaped, f"{self.time_label}{sep}%(ts)s"])


def person_text(signer: str, agency: str | None) -> StampText:
    """``Ký bởi: …``, ``Cơ quan: …`` (wrapped) and the time, for the person's box."""
    width = _chars_per_line(PERSON_BOX[2] - person_text_left() - _MARGIN)
    lines = textwrap.wrap(f"Ký bởi: {signer}", width) or ["Ký bởi:"]
    if agency:
        lines += textwrap.wrap(f"Cơ quan: {agency}", width)
    return StampText(tuple(lines))


def seal_text(agency: str) -> StampText:
    """The agency's name (wrapped) and the time, for the seal's box."""
    x1, _, x2, _ = seal_box()
    return StampText(tuple(textwrap.wrap(agency, _chars_per_line(x2 - x1 - 2 * _MARGIN)) or [""]),
                     time_on_own_line=True)


def _chars_per_line(width: int) -> int:
    # Noto Sans averages about 0.55 em per character of Vietnamese text; the stamp shrinks
    # whatever is still too wide, so this only decides where lines break.
    return max(8, int(width / (FONT_SIZE * 0.55)))


def _text_box_style() -> Any:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory  # fontTools and HarfBuzz: only when drawing

    return TextBoxStyle(font=GlyphAccumulatorFactory(str(font_path()), font_size=FONT_SIZE), font_size=FONT_SIZE,
                        leading=FONT_SIZE + 2)


class _VietnamTimeStyle(TextStampStyle):
    """A text stamp whose ``%(ts)s`` is the signing time in Vietnam time.

    pyHanko hands the style the signing time already formatted with ``timestamp_format``; that
    format is ISO here, so the exact time comes back and is shown in UTC+7.
    """

    def create_stamp(self, writer: Any, box: Any, text_params: dict[str, Any]) -> Any:
        params = dict(text_params)
        try:
            when = dt.datetime.strptime(str(params["ts"]), _ISO_FORMAT)
        except (KeyError, ValueError):  # not from pyHanko's signer: show the time of drawing
            when = dt.datetime.now(dt.UTC)
        params["ts"] = format_time(when)
        return super().create_stamp(writer, box, params)



def person_style(text: StampText, box: Box = PERSON_BOX) -> Any:
    """The person's stamp: a thin frame, the text in the right two thirds."""
    left = person_text_left(box) - box[0]
    return _VietnamTimeStyle(
        stamp_text=text.template(),
        timestamp_format=_ISO_FORMAT,
        text_box_style=_text_box_style(),
        border_width=1,
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MIN,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(left=left, right=_MARGIN, top=_MARGIN, bottom=_MARGIN),
        ),
    )


def seal_style(text: StampText, image: bytes | None = None) -> Any:
    """The seal's stamp: the text centred over the seal image (framed when there is no image)."""
    return _VietnamTimeStyle(
        stamp_text=text.template(),
        timestamp_format=_ISO_FORMAT,
        text_box_style=_text_box_style(),
        border_width=0 if image else 1,
        background=_seal_image(image) if image else None,
        background_opacity=1.0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(left=1, right=1, top=1, bottom=1),
            inner_content_scaling=layout.InnerScaling.STRETCH_TO_FIT,
        ),
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(left=_MARGIN, right=_MARGIN, top=_MARGIN, bottom=_MARGIN),
        ),
    )


def _seal_image(data: bytes) -> Any:
    """The seal image (PNG, or any format Pillow reads) as pyHanko content, transparency kept."""
    from PIL import Image, UnidentifiedImageError
    from pyhanko.pdf_utils.images import PdfImage

    if len(data) > MAX_IMAGE_BYTES:
        raise PdfSignatureError(f"the seal image is {len(data)} bytes, over the limit of {MAX_IMAGE_BYTES}")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise PdfSignatureError(f"the seal image is {image.width}x{image.height} pixels, over the limit of "
                                    f"{MAX_IMAGE_PIXELS} pixels")
        image.load()
    except PdfSignatureError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PdfSignatureError(f"the seal image cannot be read: {exc}") from None
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return PdfImage(image.convert("RGBA" if transparent else "RGB"))
