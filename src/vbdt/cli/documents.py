"""``vbdt validate`` and ``vbdt inspect``: edXML files as a clerk and a validator see them."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from vbdt.cli.exits import EXIT_INVALID, EXIT_USAGE, one_line
from vbdt.cli.files import read_document
from vbdt.cli.options import limits, optional_directory
from vbdt.edxml.model import Document, Package, StatusMessage
from vbdt.edxml.validation import ValidationReport, validate
from vbdt.errors import UsageError, ValidationError, XmlError

__all__ = ["COMMANDS", "describe", "inspect_command", "validate_command"]


@click.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--lenient", is_flag=True, help="Accept known real-world quirks as warnings.")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory: every agency must be known.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def validate_command(files: Sequence[str], lenient: bool, directory_path: str | None, as_json: bool) -> None:
    """Validate edXML FILES: exit 0 valid, 1 errors found, 2 not readable as edXML."""
    directory = optional_directory(directory_path)
    bounds = limits()
    reports: list[dict[str, Any]] = []
    worst = 0
    for name in files:
        try:
            report = validate(read_document(name, limit=bounds.max_bytes), lenient=lenient, directory=directory,
                              limits=bounds)
        except (XmlError, UsageError, OSError) as exc:  # this file only: the others are still checked
            worst = max(worst, EXIT_USAGE)
            reason = one_line(exc)
            if isinstance(exc, XmlError):  # the parser's reasons do not name the file
                reason = f"{name}: unreadable: {reason.removeprefix(f'{name}: ')}"
            reports.append({"source": name, "valid": False, "unreadable": reason})
            if not as_json:
                click.echo(f"vbdt: {reason}", err=True)
            continue
        if not report.valid:
            worst = max(worst, EXIT_INVALID)
        reports.append(report.to_dict())
        if not as_json:
            _print_report(name, report)
    if as_json:
        click.echo(json.dumps(reports if len(reports) > 1 else reports[0], ensure_ascii=False, indent=2))
    sys.exit(worst)


def _print_report(name: str, report: ValidationReport) -> None:
    for finding in report.findings:
        line = f"{finding.line}:" if finding.line else ""
        click.echo(f"{name}:{line} {finding.path}: {finding.code} {finding.severity}: {finding.message}")
    verdict = "valid" if report.valid else "INVALID"
    click.echo(f"{name}: {verdict} ({len(report.errors)} errors, {len(report.warnings)} warnings)")


@click.command("inspect")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print the package as JSON.")
def inspect_command(file: str, as_json: bool) -> None:
    """Show an edXML FILE as a person reads it (read leniently; findings counted)."""
    bounds = limits()
    report = validate(read_document(file, limit=bounds.max_bytes), lenient=True, limits=bounds)
    if report.package is None:
        raise ValidationError(report.findings, source=file)
    if as_json:
        click.echo(json.dumps(describe(report.package) | {"findings": [f.to_dict() for f in report.findings]},
                              ensure_ascii=False, indent=2, default=str))
        return
    for key, value in describe(report.package).items():
        if isinstance(value, list):
            click.echo(f"{key}:")
            for item in value:
                click.echo(f"  - {item if not isinstance(item, dict) else _fmt(item)}")
        elif value not in (None, ""):
            click.echo(f"{key}: {value}")
    click.echo(f"findings: {len(report.errors)} errors, {len(report.warnings)} warnings (vbdt validate for details)")


def _fmt(item: dict[str, Any]) -> str:
    return ", ".join(f"{v}" for v in item.values() if v not in (None, ""))


def describe(package: Package) -> dict[str, Any]:
    """A package as a flat dictionary of what a clerk looks at."""
    sender = f"{package.sender.organ_id} {package.sender.organ_name or ''}".strip()
    if isinstance(package, StatusMessage):
        rf = package.response_for
        return {
            "kind": f"status {package.status_code.value}: {package.status_code.label}",
            "from": sender,
            "about": rf.document_id or f"{rf.code} ({rf.organ_id})",
            "description": package.description,
            "timestamp": f"{package.timestamp:%Y/%m/%d %H:%M:%S}",
            "staff": package.staff_info.staff if package.staff_info else None,
        }
    assert isinstance(package, Document)
    info = package.other_info
    return {
        "kind": f"{package.business.doc_type.label} ({package.document_type.type_name or 'văn bản'})",
        "document_id": package.document_id,
        "number": str(package.code),
        "from": sender,
        "to": [f"{r.organ_id} {r.organ_name or ''}".strip() for r in package.recipients],
        "subject": package.subject,
        "promulgated": f"{package.promulgation.date:%Y/%m/%d}"
        + (f", {package.promulgation.place}" if package.promulgation.place else ""),
        "due": f"{package.due_date:%Y/%m/%d}" if package.due_date else None,
        "priority": info.priority.label,
        "steering": package.steering_type.label if package.steering_type is not None else None,
        "signer": " ".join(
            x for x in (package.signer.competence, package.signer.full_name) if x
        ) if package.signer else None,
        "attachments": [
            {"name": a.name, "size": f"{a.size:,} bytes", "type": a.content_type, "id": a.content_id}
            for a in package.attachments
        ],
    }


COMMANDS: list[click.Command] = [validate_command, inspect_command]
