"""Conformance of packages made by another system: every rule vbdt knows, one report a vendor can act on.

:func:`~vbdt.conformance.checks.check_bytes` runs every check on one file (the existing
:func:`~vbdt.edxml.validation.validate`, :func:`~vbdt.trust.xmldsig.verify` and
:func:`~vbdt.trust.pades.verify_pdf`, plus the writing conventions other readers rely on) and
returns a typed :class:`~vbdt.conformance.checks.FileReport`; :mod:`vbdt.conformance.html` renders a
:class:`~vbdt.conformance.checks.ConformanceReport` as one self-contained HTML page. Pure: bytes and
objects in, objects and text out (``vbdt check`` does the file I/O).
"""

from vbdt.conformance.checks import (
    CHECKS,
    SCHEMA,
    CheckFinding,
    CheckResult,
    CheckSpec,
    ConformanceReport,
    FileReport,
    Outcome,
    check_bytes,
    unreadable,
)
from vbdt.conformance.html import render_html

__all__ = [
    "CHECKS",
    "SCHEMA",
    "CheckFinding",
    "CheckResult",
    "CheckSpec",
    "ConformanceReport",
    "FileReport",
    "Outcome",
    "check_bytes",
    "render_html",
    "unreadable",
]
