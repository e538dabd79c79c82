"""Attachment content: bytes in memory, a file on disk, or base64 text read off a package.

A package may carry a 10 MB PDF; the reader does not decode it until somebody asks
(:class:`Base64Content`), and the writer copies base64 that came in straight back out without a
decode/encode round trip. Every source answers the same three questions: its bytes, its base64 text
and its decoded size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from abc import ABC, abstractmethod
from pathlib import Path

from vbdt.errors import AttachmentError

__all__ = ["Base64Content", "BytesContent", "ContentSource", "FileContent", "content_equal"]

_WHITESPACE = re.compile(r"\s+")
_SPACES = ("\n", " ", "\r", "\t")
_B64_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class ContentSource(ABC):
    """Where an attachment's bytes come from. Subclass it for another store (an object store, a DMS).

    An ABC rather than a runtime-checkable Protocol on purpose: checking a Protocol with
    isinstance() evaluates ``size``, which for base64 text means a scan of megabytes.
    """

    __slots__ = ()

    @abstractmethod
    def read(self) -> bytes:
        """The decoded content."""

    @abstractmethod
    def base64(self) -> str:
        """The content as base64 text without line breaks."""

    @property
    @abstractmethod
    def size(self) -> int:
        """The decoded size in bytes, computed without decoding where possible."""

    def __eq__(self, other: object) -> bool:
        return content_equal(self, other)

    __hash__ = None  # type: ignore[assignment]


class BytesContent(ContentSource):
    """Content held in memory."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise AttachmentError(f"attachment content must be bytes, not {type(data).__name__}")
        self._data = bytes(data)

    def read(self) -> bytes:
        return self._data

    def base64(self) -> str:
        return base64.b64encode(self._data).decode("ascii")

    @property
    def size(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"BytesContent({self.size} bytes)"


class FileContent(ContentSource):
    """Content read from a file when needed, so a large PDF is not held twice."""

    __slots__ = ("path",)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AttachmentError(f"attachment file {str(self.path)!r} does not exist")

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise AttachmentError(f"cannot read attachment {str(self.path)!r}: {exc.strerror}") from exc

    def base64(self) -> str:
        return base64.b64encode(self.read()).decode("ascii")

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def __repr__(self) -> str:
        return f"FileContent({str(self.path)!r})"


class Base64Content(ContentSource):
    """Base64 text as it came in a package; decoded only when read.

    ``read()`` raises :class:`~vbdt.errors.AttachmentError` when the text is not valid base64.
    """

    __slots__ = ("_clean", "_raw")

    def __init__(self, text: str | bytes) -> None:
        # Kept as str: that is what lxml hands over, and a second copy of 13 MB is not free.
        self._raw = text if isinstance(text, str) else bytes(text).decode("ascii", "replace")
        self._clean: str | None = None

    def _cleaned(self) -> str:
        if self._clean is None:
            raw = self._raw
            # Most packages carry one unbroken line: four substring tests (memchr speed) decide
            # that, where a regex scan of 13 MB would cost 100 ms.
            has_space = any(ch in raw for ch in _SPACES) or (not raw.isascii() and _WHITESPACE.search(raw))
            self._clean = "".join(raw.split()) if has_space else raw
        return self._clean

    def problem(self) -> str | None:
        """Why the text is not valid base64, or None when it is."""
        clean = self._cleaned()
        if len(clean) % 4:
            return f"length {len(clean)} is not a multiple of 4 (truncated?)"
        if not _B64_ALPHABET.fullmatch(clean):
            bad = re.search(r"[^A-Za-z0-9+/=]", clean)
            if bad:
                return f"character {bad.group()!r} at offset {bad.start()} is not base64"
            return "padding '=' appears before the end"
        return None

    def read(self) -> bytes:
        clean = self._cleaned()
        try:
            return binascii.a2b_base64(clean, strict_mode=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
            reason = self.problem() or str(exc)
            raise AttachmentError(f"attachment is not valid base64: {reason}") from exc

    def base64(self) -> str:
        return self._cleaned()

    @property
    def size(self) -> int:
        clean = self._cleaned()
        return len(clean) * 3 // 4 - clean[-2:].count("=") if clean else 0

    def __repr__(self) -> str:
        return f"Base64Content({self.size} bytes)"


def content_equal(a: ContentSource, b: object) -> bool:
    """True when two sources hold the same bytes (compared as base64 when both are base64)."""
    if not isinstance(b, ContentSource):
        return False
    if isinstance(a, Base64Content) and isinstance(b, Base64Content):
        return a._cleaned() == b._cleaned()
    if a.size != b.size:
        return False
    return hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest()
