"""What an attachment really is, from its bytes: senders' ContentType labels lie.

Real packages carry ZIPs labelled ``application/pdf`` or ``text/plain``, invented types
(``application/doc``, ``application/xslx``), and files zipped by the sender as one entry named
``<uuid>.<ext>``. :func:`sniff` reads the first bytes only (a base64 attachment is decoded for those
alone); :func:`detect_type` also looks inside a ZIP to tell a DOCX from an XLSX; :func:`unzip_single`
hands over the one file of a one-entry ZIP, bounded so that a ZIP bomb is an
:class:`~vbdt.errors.ArchiveTooLarge` and never a memory blow-up.
"""

from __future__ import annotations

import binascii
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from vbdt.edxml.attachment import Base64Content, ContentSource
from vbdt.edxml.limits import DEFAULT_LIMITS, Limits
from vbdt.errors import ArchiveTooLarge, AttachmentError

__all__ = ["KNOWN_TYPES", "Sniffed", "detect_type", "sniff", "unzip_single", "zip_single_entry_name"]

_HEAD = 96  # bytes read for a verdict: magic numbers plus the first ZIP entry's name
_OOXML = "application/vnd.openxmlformats-officedocument"
_DOCX = f"{_OOXML}.wordprocessingml.document"
_XLSX = f"{_OOXML}.spreadsheetml.sheet"
_PPTX = f"{_OOXML}.presentationml.presentation"

_ZIP_FAMILY = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip", _DOCX, _XLSX, _PPTX,
                         "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet"})  # fmt: skip
_OLE_FAMILY = frozenset({"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
                         "application/vnd.ms-outlook", "application/x-ole-storage"})  # fmt: skip

KNOWN_TYPES = frozenset({
    "application/pdf", "application/octet-stream", "application/xml", "text/xml", "text/plain", "text/html",
    "text/csv", "application/rtf", "text/rtf", "application/vnd.rar", "application/x-rar-compressed",
    "application/x-7z-compressed", "application/gzip", "application/pkcs7-signature", "application/json",
    "image/png", "image/jpeg", "image/gif", "image/tiff", "image/bmp", "audio/mpeg", "video/mp4",
    *_ZIP_FAMILY, *_OLE_FAMILY,
})  # fmt: skip
"""MIME types real attachments use; anything else (``application/doc``) is reported as invented."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    """The type the bytes show."""

    mime: str
    """The MIME type, e.g. ``application/pdf``; ZIP-based office files are ``application/zip``
    from :func:`sniff` and their exact type from :func:`detect_type`."""
    family: frozenset[str]
    """Declared types that are honest labels for these bytes."""

    def matches(self, declared: str) -> bool:
        """True when ``declared`` is an honest label for these bytes."""
        return declared.strip().lower() in self.family


_MAGIC: tuple[tuple[bytes, str, frozenset[str]], ...] = (
    (b"%PDF-", "application/pdf", frozenset({"application/pdf"})),
    (b"PK\x03\x04", "application/zip", _ZIP_FAMILY),
    (b"PK\x05\x06", "application/zip", _ZIP_FAMILY),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage", _OLE_FAMILY),
    (b"\x89PNG\r\n\x1a\n", "image/png", frozenset({"image/png"})),
    (b"\xff\xd8\xff", "image/jpeg", frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})),
    (b"GIF87a", "image/gif", frozenset({"image/gif"})),
    (b"GIF89a", "image/gif", frozenset({"image/gif"})),
    (b"II*\x00", "image/tiff", frozenset({"image/tiff"})),
    (b"MM\x00*", "image/tiff", frozenset({"image/tiff"})),
    (b"Rar!\x1a\x07", "application/vnd.rar", frozenset({"application/vnd.rar", "application/x-rar-compressed"})),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed", frozenset({"application/x-7z-compressed"})),
)


def _head(content: ContentSource) -> bytes:
    if isinstance(content, Base64Content):
        text = content.base64()[: _HEAD // 3 * 4]
        try:
            return binascii.a2b_base64(text)
        except (binascii.Error, ValueError):
            return b""  # not base64: rule EDX303 says so
    try:
        return content.read()[:_HEAD]
    except AttachmentError:
        return b""


def sniff(content: ContentSource) -> Sniffed | None:
    """The type shown by the first bytes, or None when they match no known signature."""
    head = _head(content)
    for magic, mime, family in _MAGIC:
        if head.startswith(magic):
            return Sniffed(mime, family)
    return None


def detect_type(content: ContentSource) -> str | None:
    """The MIME type of the bytes, looking inside a ZIP for DOCX, XLSX and PPTX (None: unknown)."""
    found = sniff(content)
    if found is None or found.mime != "application/zip":
        return None if found is None else found.mime
    names = _zip_names(content.read(), limit=DEFAULT_LIMITS.max_attachments)
    for prefix, mime in (("word/", _DOCX), ("xl/", _XLSX), ("ppt/", _PPTX)):
        if any(name.startswith(prefix) for name in names):
            return mime
    return "application/zip"


def _entry_count(data: bytes) -> int | None:
    """Entries in the ZIP's end-of-central-directory record, read before zipfile lists them all."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return None
    return int(struct.unpack_from("<H", data, end + 10)[0])


def _zip_names(data: bytes, *, limit: int) -> list[str]:
    count = _entry_count(data)
    if count is None or count >= 0xFFFF or count > limit:
        return []  # ZIP64 or a directory too long to list: not inspected
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return []


def _range(content: ContentSource, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of the content; base64 is decoded for that range alone."""
    if start < 0 or end <= start:
        return b""
    if not isinstance(content, Base64Content):
        try:
            return content.read()[start:end]
        except AttachmentError:
            return b""
    text = content.base64()
    first = start // 3
    try:
        chunk = binascii.a2b_base64(text[first * 4 : -(-end // 3) * 4])
    except (binascii.Error, ValueError):
        return b""  # not base64: rule EDX303 says so
    return chunk[start - first * 3 : end - first * 3]


def zip_single_entry_name(content: ContentSource) -> str | None:
    """The name of the one file in a one-entry ZIP, or None for anything else.

    Read off the end-of-central-directory record and the one central-directory entry, so a large
    attachment is not decoded to name it."""
    size = content.size
    end = _range(content, size - 22, size)  # a ZIP without archive comment ends with this record
    if not end.startswith(b"PK\x05\x06") or _entry_count(end) != 1:
        return None
    directory_size, directory_offset = struct.unpack_from("<II", end, 12)
    entry = _range(content, directory_offset, directory_offset + min(directory_size, 46 + 0xFFFF))
    if not entry.startswith(b"PK\x01\x02") or len(entry) < 46:
        return None
    flags, name_length = struct.unpack_from("<H", entry, 8)[0], struct.unpack_from("<H", entry, 28)[0]
    raw = entry[46 : 46 + name_length]
    name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    return name if name and not name.endswith("/") else None


def unzip_single(content: ContentSource, limits: Limits = DEFAULT_LIMITS) -> tuple[str, bytes]:
    """The name and bytes of the one file in a one-entry ZIP.

    Raises :class:`~vbdt.errors.AttachmentError` when the content is not such a ZIP, and
    :class:`~vbdt.errors.ArchiveTooLarge` when the file unpacks past ``limits.max_unzipped_bytes``
    (checked on the bytes really inflated, not on the size the archive claims).
    """
    data = content.read()
    if _entry_count(data) != 1:
        raise AttachmentError("the attachment is not a ZIP holding exactly one file")
    bound = limits.max_unzipped_bytes
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            (info,) = archive.infolist()
            if info.file_size > bound:
                raise ArchiveTooLarge(f"{info.filename!r} unpacks to {info.file_size} bytes, over Limits.max_unzipped_bytes = {bound}")
            with archive.open(info) as stream:
                inner = stream.read(bound + 1)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError, ValueError, OSError) as exc:
        raise AttachmentError(f"the zipped attachment cannot be unpacked: {exc}") from None
    if len(inner) > bound:
        raise ArchiveTooLarge(f"{info.filename!r} unpacks past Limits.max_unzipped_bytes = {bound}")
    return info.filename, inner
