"""What vbdt accepts from a peer: every bound on untrusted input, in one configurable object.

A hostile agency, broker user or file can make a receiver spend only what these allow. Each
field is checked where the work happens (the parser, the PDF verifier, the receiving loop, the
sender) and each breach is a documented :class:`~vbdt.errors.VbdtError` with the limit's name.
Pass a changed copy (``dataclasses.replace(DEFAULT_LIMITS, max_bytes=...)``) to the entry
points that take ``limits=``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what vbdt accepts; the defaults fit real edXML traffic with a wide margin."""

    max_bytes: int = 256 * MiB
    """Largest document accepted, in bytes (base64 makes a 190 MB file about 256 MB)."""
    max_depth: int = 32
    """Deepest element nesting accepted (edXML needs about 8); also the deepest PDF form-field tree."""
    max_elements: int = 200_000
    """Most elements in one document, comments and processing instructions included (a To list of
    10,000 agencies needs about 60,000). Checked while parsing, before the rest of the tree is built."""
    max_attributes: int = 200_000
    """Most attributes (namespace declarations included) in one document, all elements together.
    Checked while parsing; a single start tag is bounded by it before libxml2 builds its attributes."""
    max_attachments: int = 1_000
    """Most attachments in one package."""
    max_unzipped_bytes: int = 256 * MiB
    """Largest file unpacked from a zipped attachment (a ZIP bomb stops here, unread past it)."""
    max_keyinfo_certificates: int = 16
    """Most certificates in a signature's KeyInfo (a signer and its chain need 2 to 4)."""
    max_pdf_signatures: int = 16
    """Most signatures in one PDF (a person and a seal need 2; time-stamps and LTV add a few)."""
    max_pdf_revisions: int = 64
    """Most incremental revisions (saved updates) in one PDF."""
    max_message_bytes: int = 100 * MiB
    """Largest message a sender publishes (RabbitMQ refuses more than ``max_message_size``, 128 MiB
    by default); larger packages are refused before anything is recorded or published."""
    max_inflight_bytes: int = 512 * MiB
    """Most bytes of received messages handled at once by one agency (prefetch × message size is
    bounded by this, whatever the prefetch)."""


DEFAULT_LIMITS = Limits()
