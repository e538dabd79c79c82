"""``vbdt bulk``: one directive to thousands of agencies, or a spreadsheet of documents; resumable, with a report.

::

    vbdt bulk send DOC.edxml --to '**:commune' --as 000.00.00.H14 --keys DIR   # signed once, published in batches
    vbdt bulk send --manifest batch.csv --as ... --keys DIR                   # every row checked before anything is sent
    vbdt bulk resume RUN --as ... --keys DIR                                  # only what the broker has not confirmed
    vbdt bulk list --as ...                                                   # runs and their state
    vbdt bulk report RUN --as ... [--watch] [--json | --csv | --html OUT]     # receipts, per district, overdue, rejected

``vbdt bulk send`` runs the send pre-flight of ``vbdt send`` (:func:`preflight_bulk`) on every
document before connecting. Progress goes to stderr: a rich progress bar (rate, ETA) on a terminal,
a plain line per batch otherwise; ``--json`` prints one JSON event a line on stdout instead. Exit
codes: 0 every copy confirmed by the broker; 1 some selectors, rows or recipients left out
(reported, the rest sent), or a pre-flight check failed (nothing sent); 75 copies not confirmed
(broker gone, inbox full): ``vbdt bulk resume RUN`` finishes them; 130 interrupted (the run id to
resume is printed).

A manifest is a UTF-8 CSV with a header row: ``number``, ``notation``, ``date`` (DD/MM/YYYY or
YYYY-MM-DD), ``subject``, ``type_name``, ``pdf`` (path, relative to the manifest), ``to``
(selectors separated by spaces or ``;``), and optionally ``type`` (1-99), ``place``, ``due_date``,
``content``. Every row is read and checked first; broken rows are reported with their line number
and nothing is sent.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vbdt.cli.config import current_config, pick_path
from vbdt.cli.exchange import agency_settings, ledger_file, open_agency
from vbdt.cli.exits import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_TEMPORARY, exit_code_for, fail, one_line
from vbdt.cli.files import input_path, output_file, read_document, read_input, write_output
from vbdt.cli.options import agency_options, check_organ_id, limits, load_directory
from vbdt.directory.agencies import Directory
from vbdt.edxml.codes import SteeringType
from vbdt.edxml.model import VIETNAM_TZ, Attachment, Code, Document, DocumentType, PromulgationInfo, TraceHeader
from vbdt.errors import InvalidModel, UsageError, VbdtError

if TYPE_CHECKING:
    from vbdt.exchange.bulk import BulkEvent, BulkItem, BulkRun
    from vbdt.exchange.journal import JournalRecipient, RunInfo

__all__ = ["COMMANDS", "bulk_group", "preflight_bulk", "read_manifest", "read_manifest_rows"]

_REQUIRED = ("number", "notation", "date", "subject", "type_name", "pdf", "to")
_OPTIONAL = ("type", "place", "due_date", "content")
_MAX_ROWS = 10_000


def _date(text: str, column: str) -> dt.date:
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise ValueError(f"{column} {text!r} is not a date (DD/MM/YYYY or YYYY-MM-DD)")


def _row_document(row: dict[str, str], sender: str, directory: Directory, folder: Path, max_bytes: int) -> BulkItem:
    from vbdt.exchange.bulk import BulkItem

    missing = [c for c in _REQUIRED if not (row.get(c) or "").strip()]
    if missing:
        raise ValueError(f"empty {', '.join(missing)}")
    pdf_path = folder / row["pdf"].strip()
    pdf = read_input(input_path(pdf_path, what="PDF"), limit=max_bytes)
    if not pdf.startswith(b"%PDF-"):
        raise ValueError(f"{row['pdf']!r} is not a PDF (it does not begin with %PDF-)")
    issued = _date(row["date"], "date")
    due = _date(row["due_date"], "due_date") if (row.get("due_date") or "").strip() else None
    kind = int(row["type"]) if (row.get("type") or "").strip() else 1
    selectors = [s for s in row["to"].replace(";", " ").split() if s]
    code = Code(number=row["number"].strip(), notation=row["notation"].strip())
    document = Document(
        sender=directory.organization(sender), recipients=[], code=code,
        promulgation=PromulgationInfo(place=(row.get("place") or "").strip() or directory.get(sender).name, date=issued),
        document_type=DocumentType(type=kind, type_name=row["type_name"].strip()),
        subject=row["subject"].strip(), content=(row.get("content") or "").strip() or None, due_date=due,
        steering_type=SteeringType.DIRECTIVE if due else SteeringType.NONE,
        trace=[TraceHeader(organ_id=sender, timestamp=dt.datetime.now(VIETNAM_TZ))],
        attachments=[Attachment.from_bytes(Path(row["pdf"]).name or "van-ban.pdf", pdf, content_id="cid:1")],
    )
    return BulkItem(document, selectors)


def read_manifest(path: str, sender: str, directory: Directory, max_bytes: int) -> list[BulkItem]:
    """Every row of a manifest as a document and its selectors; UsageError listing each broken row
    by its line number (nothing is sent when one is broken)."""
    return [item for _, item in read_manifest_rows(path, sender, directory, max_bytes)]


def read_manifest_rows(path: str, sender: str, directory: Directory, max_bytes: int) -> list[tuple[int, BulkItem]]:
    """As :func:`read_manifest`, each item with the line of the manifest it comes from."""
    raw = read_input(path, limit=max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = set(reader.fieldnames or ())
    if absent := [c for c in _REQUIRED if c not in columns]:
        raise UsageError(f"{path}: no column {', '.join(absent)} in the header (needs {', '.join(_REQUIRED)})")
    items: list[tuple[int, BulkItem]] = []
    broken: list[str] = []
    folder = Path(path).parent
    try:
        for row in reader:
            if reader.line_num > _MAX_ROWS + 1:
                raise UsageError(f"{path}: more than {_MAX_ROWS} rows; split the manifest")
            if None in row:
                broken.append(f"line {reader.line_num}: more cells than columns")
                continue
            try:
                items.append((reader.line_num, _row_document(row, sender, directory, folder, max_bytes)))
            except (ValueError, VbdtError, OSError) as exc:
                reason = exc.errors()[0]["msg"] if isinstance(exc, InvalidModel | ValueError) and hasattr(exc, "errors") else exc
                broken.append(f"line {reader.line_num}: {' '.join(str(reason).split())}")
    except csv.Error as exc:
        raise UsageError(f"{path}: line {reader.line_num}: not CSV ({exc})") from None
    if broken:
        raise UsageError(f"{path}: {len(broken)} broken row(s), nothing sent: " + "; ".join(broken[:20])
                         + (f"; and {len(broken) - 20} more" if len(broken) > 20 else ""))
    if not items:
        raise UsageError(f"{path}: no rows")
    return items


def preflight_bulk(rows: Sequence[tuple[int | None, BulkItem]], settings: Any, *, raw: bytes | None, force: bool,
                   source: str) -> None:
    """The send pre-flight (:mod:`vbdt.cli.preflight`, as ``vbdt send``) of every document of a run,
    before connecting: each is from ``--as``; a signed envelope (``raw``, the FILE given) verifies as
    its own; the keys match their certificates, are valid now and bound to ``--as`` (checked once:
    they sign every document); each PDF is original-valid, or unsigned and signed now (``--force``: sent
    as it is); each package validates as it will be sent, to the agencies its selectors name.

    One document (FILE): its failure is raised, with the exit code ``vbdt send`` gives it. A manifest:
    every row is checked, and the rows that fail are reported together by line number (exit code of
    their failure, 1 when they fail differently); nothing is sent."""
    from vbdt.cli import preflight
    from vbdt.cli.exchange import signing_keys
    from vbdt.exchange.bulk import resolve_selectors, with_trace

    organ_id = settings.organ_id
    directory = load_directory(settings.directory_path)
    directory.get(organ_id)  # UnknownAgency with a clear message
    key, person, seal, trust = signing_keys(settings)
    bounds = limits()
    preflight.check_keys(organ_id, directory, key, person=person, seal=seal)
    failures: list[tuple[int | None, VbdtError]] = []
    for line, item in rows:
        document = item.document
        try:
            if str(document.sender.organ_id) != organ_id:
                raise UsageError(f"the document is from {document.sender.organ_id}, not from {organ_id} (--as)")
            if raw is not None:
                preflight.check_envelope(raw, organ_id=organ_id, trust=trust, directory=directory, limits=bounds)
            preflight.check_pdf_attachments(document.attachments, organ_id=organ_id, trust=trust, directory=directory,
                                            limits=bounds, will_sign=person is not None and seal is not None, force=force)
            recipients, _ = resolve_selectors(directory, item.to, organ_id)
            if recipients:  # none: the run refuses it, naming its selectors
                addressed = Document(**{**document.__dict__, "recipients": [directory.organization(r) for r in recipients]})
                preflight.check_document(with_trace(addressed, organ_id), directory, bounds)
        except VbdtError as exc:
            if line is None:
                raise
            failures.append((line, exc))
    if failures:
        codes = {exit_code_for(exc) for _, exc in failures}
        fail(f"{source}: {len(failures)} row(s) fail the pre-flight, nothing sent: "
             + "; ".join(f"line {line}: {one_line(exc)}" for line, exc in failures[:20])
             + (f"; and {len(failures) - 20} more" if len(failures) > 20 else ""),
             codes.pop() if len(codes) == 1 else EXIT_INVALID)


class _Progress:
    """Progress of a run on stderr (rich bar on a terminal, plain lines otherwise) or JSON on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.run_id: str | None = None
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._last = 0.0

    def __enter__(self) -> _Progress:
        if not self.as_json and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]} copies/s"), TimeRemainingColumn(), console=Console(stderr=True))
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: BulkEvent) -> None:
        self.run_id = event.run_id
        done = event.confirmed + event.unroutable + event.failed
        if self.as_json:
            click.echo(json.dumps(event.as_dict(), ensure_ascii=False))
        elif self._bar is not None:
            if event.document_id not in self._tasks:
                self._tasks[event.document_id] = self._bar.add_task(event.document_id[-40:], total=event.total, rate="-")
            self._bar.update(self._tasks[event.document_id], completed=done,
                             rate=f"{done / event.elapsed:,.0f}" if event.elapsed > 0 else "-")
        elif event.kind != "progress" or time.monotonic() - self._last > 1.0:
            self._last = time.monotonic()
            click.echo(f"vbdt: bulk {event.run_id} {event.kind}: {event.document_id}: {event.confirmed} confirmed, "
                       f"{event.unroutable} unroutable, {event.failed} failed, {event.pending} pending of {event.total} "
                       f"({event.elapsed:.1f} s)", err=True)


def _finish(info: RunInfo, left: list[JournalRecipient], as_json: bool) -> None:
    c = info.counts
    if as_json:
        click.echo(json.dumps({"event": "run", "run": info.run_id, "state": info.state.value, "counts": c,
                               "problems": info.problems}, ensure_ascii=False))
    else:
        click.echo(f"bulk run {info.run_id}: {c['confirmed']} of {info.total} copies confirmed by the broker, "
                   f"{c['unroutable']} without an inbox, {c['failed']} refused, {c['pending']} not confirmed")
        for what, why in info.problems.items():
            click.echo(f"  left out: {what}: {why}")
        for copy in left:
            click.echo(f"  {copy.recipient}: {copy.state.value}: {copy.reason}")
    if c["pending"]:
        fail(f"{c['pending']} copies not confirmed by the broker: `vbdt bulk resume {info.run_id}` sends them", EXIT_TEMPORARY)
    if c["unroutable"] or c["failed"] or info.problems:
        sys.exit(EXIT_INVALID)


def _run_bulk(settings: Any, as_json: bool, action: Any) -> None:
    """Open the agency, run ``action(agency, progress)`` to its end, report; Ctrl-C names the run to resume."""
    progress = _Progress(as_json)

    async def main() -> tuple[RunInfo, list[JournalRecipient]]:
        agency = await open_agency(settings, own_user=True)
        try:
            run: BulkRun = await action(agency, progress)
            left = [r for r in run.journal.recipients(run.run_id) if r.state.value in ("unroutable", "failed")]
            return run.info(), left  # read before the client closes its journal
        finally:
            await agency.close()

    with progress:
        try:
            info, left = asyncio.run(main())
        except KeyboardInterrupt:
            where = f": `vbdt bulk resume {progress.run_id}` finishes it" if progress.run_id else ""
            fail(f"interrupted{where}", EXIT_INTERRUPTED)
    _finish(info, left, as_json)


@click.group("bulk")
def bulk_group() -> None:
    """One document to many agencies, or a manifest of documents: resumable, with progress and a report."""


@bulk_group.command("send")
@click.argument("file", required=False)
@click.option("--to", "to", multiple=True, metavar="SELECTOR", help="Recipients: OrganIds or selectors (repeat).")
@click.option("--manifest", metavar="FILE.csv", help="Many documents: one CSV row each (see `vbdt bulk -h`).")
@click.option("--force", is_flag=True, help="Send an unsigned PDF attachment as it is when no person's key and seal "
              "are configured to sign it (nothing else is forcible).")
@click.option("--group", type=click.IntRange(1, 10_000), default=None, metavar="N",
              help="Recipients listed in each signed envelope (default 100): one signature per N recipients.")
@agency_options
def send_command(file: str | None, to: Sequence[str], manifest: str | None, force: bool, group: int | None,
                 organ_id: str | None,
                 keys_dir: str | None, trust_path: str | None, amqp_url: str | None, credentials: str | None,
                 directory_path: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Sign FILE once and send it to every agency --to selects; or every row of --manifest.

    Pre-flight, before connecting, as `vbdt send` (for every row of a manifest, failures by line):
    the document is from --as, a file signed already verifies as its own, the keys match their
    certificates, are valid now and bound to --as, every PDF is original-valid (or unsigned and
    signed now with the person's key and the seal), the package validates to its recipients."""
    from vbdt.edxml.validation import read

    if (file is None) == (manifest is None):
        raise UsageError("give either an edXML FILE (with --to) or --manifest FILE.csv")
    if manifest is not None and to:
        raise UsageError("--to goes with FILE; a manifest names the recipients of each row in its `to` column")
    if file is not None:
        if not to:
            raise UsageError("--to SELECTOR is required with FILE (e.g. --to '000.00.00.H14/**:commune')")
        raw = read_document(file, limit=limits().max_bytes)
        package = read(raw, limits=limits())
        if not isinstance(package, Document):
            raise UsageError(f"{file} is a status message; send documents")
        document = package
        sender = organ_id or current_config().organ_id or str(document.sender.organ_id)
    else:
        sender = organ_id or current_config().organ_id or ""
        if not sender:
            raise UsageError("--as ORGANID is required with --manifest")
    settings = agency_settings(sender, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)
    if manifest is not None:
        rows: list[tuple[int | None, BulkItem]] = list(
            read_manifest_rows(manifest, settings.organ_id, load_directory(settings.directory_path), limits().max_bytes))
        preflight_bulk(rows, settings, raw=None, force=force, source=manifest)
    else:
        from vbdt.exchange.bulk import BulkItem

        rows = [(None, BulkItem(document, list(to)))]
        preflight_bulk(rows, settings, raw=raw.getvalue(), force=force, source=str(file))
    items = [item for _, item in rows]

    async def action(agency: Any, progress: _Progress) -> BulkRun:
        sender = agency.bulk() if group is None else agency.bulk(group=group)
        return await sender.send(items, on_event=progress)  # type: ignore[no-any-return]

    _run_bulk(settings, as_json, action)


@bulk_group.command("resume")
@click.argument("run_id", metavar="RUN")
@agency_options
def resume_command(run_id: str, organ_id: str | None, keys_dir: str | None, trust_path: str | None, amqp_url: str | None,
                   credentials: str | None, directory_path: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Send what the broker has not confirmed of RUN (after Ctrl-C, a crash, the broker gone)."""
    settings = agency_settings(organ_id, keys_dir, trust_path, amqp_url, credentials, directory_path, ledger_path)
    _journal_for(settings.ledger_path, settings.organ_id)  # a missing journal is refused before connecting

    async def action(agency: Any, progress: _Progress) -> BulkRun:
        return await agency.bulk_resume(run_id, on_event=progress)  # type: ignore[no-any-return]

    _run_bulk(settings, as_json, action)


def _journal_for(ledger_path: str | None, organ_id: str) -> Path:
    from vbdt.exchange.journal import journal_path_for

    ledger = ledger_file(ledger_path, organ_id, existing=True)
    journal = Path(journal_path_for(ledger))
    if not journal.is_file():
        raise UsageError(f"{journal}: no bulk runs of {organ_id} here (give --ledger of the agency that sent them)")
    return journal


def _reading_options(func: Any) -> Any:
    for option in reversed([
        click.option("--as", "organ_id", metavar="ORGANID", help="The sending agency (or `as` in vbdt.toml)."),
        click.option("--ledger", "ledger_path", metavar="FILE", help="Its ledger (default: .vbdt/<OrganId>.db)."),
        click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one)."),
    ]):
        func = option(func)
    return func


def _sender(organ_id: str | None) -> str:
    sender = organ_id or current_config().organ_id
    if not sender:
        raise UsageError("--as ORGANID is required (or `as` in vbdt.toml)")
    return check_organ_id(sender)


@bulk_group.command("list")
@_reading_options
@click.option("--json", "as_json", is_flag=True)
def list_command(organ_id: str | None, ledger_path: str | None, directory_path: str | None, as_json: bool) -> None:
    """The bulk runs of an agency and their state."""
    from vbdt.exchange.journal import BulkJournal

    sender = _sender(organ_id)
    journal = BulkJournal(_journal_for(pick_path(ledger_path, current_config().ledger), sender))
    try:
        runs = journal.runs()
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps([{"run": r.run_id, "state": r.state.value, "created_at": r.created_at.isoformat(),
                                "documents": r.documents, "counts": r.counts, "problems": r.problems} for r in runs],
                              ensure_ascii=False, indent=2))
        return
    for r in runs:
        c = r.counts
        click.echo(f"{r.run_id}  {r.state.value:<11}  {r.created_at:%d/%m/%Y %H:%M}  {r.documents} document(s)  "
                   f"{c['confirmed']}/{r.total} confirmed  {c['pending']} pending  {c['unroutable']} unroutable  {c['failed']} failed")


@bulk_group.command("report")
@click.argument("run_id", metavar="RUN")
@_reading_options
@click.option("--watch", is_flag=True, help="Print the totals again every --every seconds until every copy is answered (Ctrl-C stops).")
@click.option("--every", type=click.FloatRange(min=0.2), default=5.0, show_default=True, metavar="SECONDS")
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="One CSV line per copy.")
@click.option("--html", "html_out", metavar="OUT", help="Write the report as one self-contained HTML page.")
def report_command(run_id: str, organ_id: str | None, ledger_path: str | None, directory_path: str | None, watch: bool,
                   every: float, as_json: bool, as_csv: bool, html_out: str | None) -> None:
    """Per-recipient state of RUN from the receipts: totals, per district/province, overdue, rejected."""
    from vbdt.exchange.bulk_report import ANSWERED, build_report, render_csv, render_html
    from vbdt.exchange.journal import BulkJournal
    from vbdt.exchange.ledger import SqliteLedger

    if sum((as_json, as_csv, html_out is not None)) > 1:
        raise UsageError("give one of --json, --csv, --html")
    sender = _sender(organ_id)
    ledger_at = pick_path(ledger_path, current_config().ledger)
    journal = BulkJournal(_journal_for(ledger_at, sender))
    ledger = SqliteLedger(ledger_file(ledger_at, sender, existing=True))
    directory = load_directory(pick_path(directory_path, current_config().directory))
    try:
        journal.run(run_id)  # UsageError for an unknown run
        report = build_report(journal, ledger, directory, run_id)
        while watch:
            totals = report.totals()
            answered = sum(n for s, n in totals.items() if s in ANSWERED)
            click.echo(f"{dt.datetime.now(VIETNAM_TZ):%H:%M:%S} {run_id}: {answered}/{len(report.rows)} answered; "
                       + ", ".join(f"{s} {n}" for s, n in totals.items()), err=as_json or as_csv or html_out is not None)
            if answered + totals.get("unroutable", 0) + totals.get("failed", 0) >= len(report.rows):
                break
            time.sleep(every)
            report = build_report(journal, ledger, directory, run_id)
        if html_out is not None:
            out = output_file(html_out)
            write_output(out, render_html(report).encode("utf-8"))
            click.echo(f"report written to {out}")
        elif as_csv:
            click.echo(render_csv(report), nl=False)
        elif as_json:
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        elif not watch:
            _print_report(report)
    finally:
        journal.close()
        ledger.close()


def _print_report(report: Any) -> None:
    click.echo(f"bulk run {report.run.run_id} of {report.sender} ({report.run.state.value}), {len(report.rows)} copies")
    for state, n in report.totals().items():
        click.echo(f"  {state:<17} {n}")
    click.echo("per district/province:")
    for group, counts in report.by_group().items():
        click.echo(f"  {group}: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    for row in report.overdue():
        click.echo(f"  QUÁ HẠN {row.late_by} ngày làm việc: {row.recipient} {row.name} ({row.state})")
    for row in report.rejected():
        click.echo(f"  TỪ CHỐI: {row.recipient} {row.name}: {row.reason}")


COMMANDS: list[click.Command] = [bulk_group]
