"""Files the command line reads and writes, whatever a hostile path points at.

Reading never trusts ``stat``: a device or a FIFO reports size 0, so :func:`read_input` reads at
most ``limit + 1`` bytes and refuses what is over. Files handed by path to the library (keys,
certificates, directories, ledgers) must be regular files under :data:`SMALL_FILE_BYTES`
(:func:`input_path`). Writing goes to a temporary file beside the target and is renamed into
place (:func:`write_output`), so a reader never sees half a file and a failure leaves none.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import stat
import unicodedata
from pathlib import Path

from vbdt.edxml.limits import DEFAULT_LIMITS
from vbdt.errors import DocumentTooLarge, UsageError

__all__ = [
    "NAME_MAX",
    "SMALL_FILE_BYTES",
    "inbox_name",
    "input_path",
    "output_dir",
    "output_file",
    "read_document",
    "read_input",
    "write_output",
]

SMALL_FILE_BYTES = 16 * 1024 * 1024
"""Largest key, certificate, trust, credentials or directory file accepted (the national
directory is about 2 MB; a trust file with a hundred CAs about 200 kB)."""
NAME_MAX = 255
"""Longest file name, in bytes, that Linux file systems (ext4, xfs, btrfs, tmpfs) accept."""
_CHUNK = 1024 * 1024
_STEM_BYTES = 120  # leaves room for the kind, the hash and the suffix under NAME_MAX


def read_input(path: str | Path, *, limit: int = DEFAULT_LIMITS.max_bytes) -> bytes:
    """The bytes of an input file, at most ``limit``: a regular file, a FIFO or a device, read bounded.

    Raises :class:`~vbdt.errors.UsageError` for a missing path or a folder and
    :class:`~vbdt.errors.DocumentTooLarge` past ``limit`` (OS errors pass through to the guard).
    """
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO nobody writes to would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, not a file") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise UsageError(f"{path}: is a folder, not a file")
    with os.fdopen(fd, "rb", buffering=0) as file:
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):  # a writer holds it open: wait for its data
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        data = bytearray()
        while len(data) <= limit:
            chunk = file.read(min(_CHUNK, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    if len(data) > limit:
        raise DocumentTooLarge(f"{path}: over the limit of {limit} bytes (Limits.max_bytes, or --max-bytes)")
    return bytes(data)


def read_document(path: str | Path, *, limit: int = DEFAULT_LIMITS.max_bytes) -> io.BytesIO:
    """An edXML input read as :func:`read_input` does, as a file object that keeps its name for messages."""
    document = io.BytesIO(read_input(path, limit=limit))
    document.name = str(path)
    return document


def input_path(path: str | Path, *, what: str = "file") -> Path:
    """A path the library will open itself: it must be a regular file under :data:`SMALL_FILE_BYTES`.

    A regular file's size is what ``stat`` says, so checking it here bounds the library's read.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such {what}") from None
    except NotADirectoryError:
        raise UsageError(f"{path}: no such {what} (a part of the path is not a folder)") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path}: is a folder; give the {what} itself")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path}: not a regular file (a device, FIFO or socket); give the {what} itself")
    if info.st_size > SMALL_FILE_BYTES:
        raise DocumentTooLarge(f"{path}: {info.st_size} bytes, over the limit of {SMALL_FILE_BYTES} for a {what}")
    return path


def output_file(path: str | Path) -> Path:
    """Where a command writes a file: not a folder, and in a folder that exists (never created by surprise)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a file name to write")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise UsageError(f"{path}: cannot write there: the folder {parent} {what}")
    return path


def output_dir(path: str | Path) -> Path:
    """A folder a command writes files into, created with its parents if missing (that is what it is for)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path}: is a file; give a folder to write into")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a part of the path is a file
        raise UsageError(f"{path}: cannot create the folder: a part of the path is a file") from None
    except NotADirectoryError:
        raise UsageError(f"{path}: cannot create the folder: a part of the path is a file") from None
    return path


def write_output(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it (created with ``mode``), then a rename."""
    temporary = path.with_name(f".{path.name[:200]}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def inbox_name(sender: str, document_id: str, kind: str) -> str:
    """A file name for a received package: readable, unique per (sender, DocumentId, kind), under NAME_MAX.

    The DocumentId is the peer's text: only letters, digits, ``.``, ``-`` and ``_`` survive, the
    stem is cut at a character boundary, and a hash of the three values keeps two packages
    (a document and a recall of it, two senders' equal DocumentIds) from ever sharing a name.
    """
    digest = hashlib.sha256("\x00".join((sender, document_id, kind)).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = _readable(document_id) or "document"
    label = _readable(kind.split(":", 1)[0])[:16] or "item"
    name = f"{stem}.{label}.{digest}.edxml"
    assert len(name.encode()) <= NAME_MAX
    return name


def _readable(text: str) -> str:
    """``text`` reduced to a safe file-name stem of at most ``_STEM_BYTES`` bytes in UTF-8."""
    normal = unicodedata.normalize("NFC", text)
    kept = "".join(c if c.isalnum() or c in ".-_" else "_" for c in normal if c.isprintable() or c.isspace())
    kept = "_".join(part for part in kept.split("_") if part).strip(".-_")  # no hidden files, no "..", no "__"
    out = bytearray()
    for char in kept:
        encoded = char.encode()
        if len(out) + len(encoded) > _STEM_BYTES:
            break
        out += encoded
    return out.decode().rstrip(".-_")
