"""``vbdt check``: a conformance report on packages and status messages made by another system.

The checks are :mod:`vbdt.conformance`; this module reads the files (bounded, whatever a path
points at), prints the report as text or JSON, writes the HTML page atomically, and exits 0 when
every file conforms, 1 when a check failed, 2 when a file could not be read or an option is wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence

import click

from vbdt.cli.exits import EXIT_INVALID, EXIT_OK, EXIT_USAGE, one_line
from vbdt.cli.files import input_path, output_file, read_input, write_output
from vbdt.cli.options import limits, optional_directory
from vbdt.conformance.checks import ConformanceReport, FileReport, Outcome, Profile, check_bytes, unreadable
from vbdt.conformance.html import render_html
from vbdt.errors import CertificateRejected, UsageError, XmlError
from vbdt.trust.chain import TrustStore

__all__ = ["COMMANDS", "check_command"]

_MARK = {Outcome.PASS: "PASS", Outcome.FAIL: "FAIL", Outcome.WARN: "WARN", Outcome.SKIPPED: "SKIP"}


def _trust_store(path: str | None) -> TrustStore | None:
    if path is None:
        return None
    try:
        return TrustStore.from_pem(input_path(path, what="trust anchors file"))
    except CertificateRejected as exc:  # not a PEM of certificates: the option is wrong
        raise UsageError(f"--trust: {one_line(exc)}") from None


@click.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("--profile", type=click.Choice(["strict", "lenient"]), default="strict", show_default=True,
              help="strict: every real-world variant fails; lenient: variants warn, SHA-1 signatures verify as legacy.")
@click.option("--trust", metavar="CA.pem", help="Trust anchors (PEM): enables the signature, binding and PDF checks.")
@click.option("--directory", "directory_path", metavar="FILE",
              help="Agency directory: agencies must be known, pinned certificates apply.")
@click.option("--html", "html_out", metavar="OUT", help="Also write the report as one self-contained HTML page.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (schema vbdt.check/1).")
def check_command(files: Sequence[str], profile: str, trust: str | None, directory_path: str | None,
                  html_out: str | None, as_json: bool) -> None:
    """Check that FILES (packages, status messages) conform: exit 0 all conform, 1 a check failed, 2 unreadable."""
    target = output_file(html_out) if html_out else None  # refuse a bad output before any work
    store = _trust_store(trust)
    directory = optional_directory(directory_path)
    bounds = limits()
    chosen: Profile = "lenient" if profile == "lenient" else "strict"
    reports: list[FileReport] = []
    for name in files:
        try:
            data = read_input(name, limit=bounds.max_bytes)
        except (UsageError, XmlError, OSError) as exc:  # this file only: the others are still checked
            reason = one_line(exc)
            if not reason.startswith(name):
                reason = f"{name}: {reason}"
            click.echo(f"vbdt: {reason}", err=True)
            reports.append(unreadable(name, reason))
            continue
        report = check_bytes(data, source=name, profile=chosen, trust=store, directory=directory, limits=bounds)
        del data
        reports.append(report)
        xml = report.check("xml")
        if xml.outcome is Outcome.FAIL:
            click.echo(f"vbdt: {name}: not readable as edXML: {xml.findings[0].reason}", err=True)
    whole = ConformanceReport(reports, chosen, trust=store is not None, directory=directory is not None,
                              generated=dt.datetime.now(dt.UTC).astimezone())
    if target is not None:
        from vbdt import __version__

        write_output(target, render_html(whole, version=__version__).encode("utf-8"))
    if as_json:
        click.echo(json.dumps(whole.to_dict(), ensure_ascii=False, indent=2))
    else:
        for report in reports:
            _print(report)
        totals = whole.totals()
        click.echo(f"{totals['conforming']} of {totals['files']} files conform "
                   f"({totals['fail']} checks failed, {totals['warn']} warned, {totals['skipped']} skipped)"
                   + (f"; report written to {html_out}" if target is not None else ""))
    if any(r.error is not None for r in reports):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_OK if whole.conforms else EXIT_INVALID)


def _print(report: FileReport) -> None:
    if report.error is not None:
        click.echo(f"{report.source}: NOT READ: {report.error}")
        return
    for check in report.checks:
        note = f" ({check.note})" if check.note and check.outcome is Outcome.SKIPPED else ""
        click.echo(f"{report.source}: {_MARK[check.outcome]} {check.id}: {check.title}{note}")
        for f in check.findings:
            line = f"{f.line}:" if f.line else ""
            click.echo(f"  {line}{f.path or '-'}: {f.code} {f.severity}: {f.reason}")
            click.echo(f"    fix: {f.fix}")
    counts = report.counts()
    verdict = "conforms" if report.conforms else "DOES NOT CONFORM"
    click.echo(f"{report.source}: {verdict} ({counts['fail']} failed, {counts['warn']} warned, "
               f"{counts['pass']} passed, {counts['skipped']} skipped)")


COMMANDS: list[click.Command] = [check_command]
