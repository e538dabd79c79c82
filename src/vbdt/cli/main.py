"""The ``vbdt`` command line.

Every command answers bad input with a one-line reason on stderr and a non-zero exit code:
1 for an invalid document or a failed check, 2 for a file that cannot be read as edXML or a bad
argument, 70 for a bug in vbdt (set ``VBDT_DEBUG=1`` to see its traceback).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vbdt.directory import Directory
from vbdt.errors import UsageError, VbdtError, XmlError
from vbdt.model import Document, Package, StatusMessage
from vbdt.validation import ValidationReport, validate

if TYPE_CHECKING:
    from vbdt.keys import SigningKey

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INVALID = 1
EXIT_UNREADABLE = 2
EXIT_BUG = 70


def _fail(message: str, code: int) -> None:
    click.echo(f"vbdt: {message}", err=True)
    sys.exit(code)


def _guarded(func: F) -> F:
    """Turn vbdt errors (and bugs) into one line and an exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except XmlError as exc:
            _fail(str(exc), EXIT_UNREADABLE)
        except UsageError as exc:
            _fail(str(exc), EXIT_UNREADABLE)
        except VbdtError as exc:
            _fail(str(exc), EXIT_INVALID)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug: still one line, unless debugging
            if os.environ.get("VBDT_DEBUG"):
                raise
            _fail(f"internal error ({type(exc).__name__}: {exc}); set VBDT_DEBUG=1 for details", EXIT_BUG)

    return wrapper  # type: ignore[return-value]


def _load_directory(path: str | None) -> Directory | None:
    return Directory.load(path) if path else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vbdt")
def main() -> None:
    """vbdt: build, sign, validate and exchange edXML documents (QCVN 102:2016)."""


@main.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--lenient", is_flag=True, help="Accept known real-world quirks as warnings.")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory: every agency must be known.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@_guarded
def validate_command(files: Sequence[str], lenient: bool, directory_path: str | None, as_json: bool) -> None:
    """Validate edXML FILES: exit 0 valid, 1 errors found, 2 not readable as edXML."""
    directory = _load_directory(directory_path)
    reports: list[dict[str, Any]] = []
    worst = 0
    for name in files:
        try:
            report = validate(Path(name), lenient=lenient, directory=directory)
        except (XmlError, UsageError) as exc:
            worst = max(worst, EXIT_UNREADABLE)
            reason = str(exc) if isinstance(exc, UsageError) else f"{name}: unreadable: {exc}"
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


@main.command("inspect")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print the package as JSON.")
@_guarded
def inspect_command(file: str, as_json: bool) -> None:
    """Show an edXML FILE as a person reads it (read leniently; findings counted)."""
    report = validate(Path(file), lenient=True)
    if report.package is None:
        from vbdt.errors import ValidationError

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


@main.group("directory")
def directory_group() -> None:
    """Query an agency directory."""


@directory_group.command("select")
@click.argument("selectors", nargs=-1, required=True)
@click.option("--directory", "directory_path", metavar="FILE", help="Directory file (default: the example one).")
@click.option("--national", is_flag=True, help="Use the national 2025 directory (34 provinces, 3,321 communes).")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def directory_select(selectors: Sequence[str], directory_path: str | None, national: bool, as_json: bool) -> None:
    """List the agencies SELECTORS name, e.g. 000.00.00.H54/**:commune or **:province."""
    from vbdt.directory import national_directory
    from vbdt.resources import example_directory_path

    if national:
        directory = national_directory()
    else:
        directory = Directory.load(directory_path or example_directory_path())
    agencies = directory.select(*selectors)
    if as_json:
        click.echo(json.dumps([a.model_dump(mode="json", exclude_defaults=True) for a in agencies], ensure_ascii=False, indent=1))
        return
    for agency in agencies:
        click.echo(f"{agency.organ_id}\t{agency.level}\t{agency.name}")
    click.echo(f"{len(agencies)} agencies", err=True)


AMQP_HELP = "RabbitMQ URL (or VBDT_AMQP_URL); an agency's own URL from `vbdt broker provision`."


@main.command("demo")
@click.option("--out", "out_dir", default=".vbdt-run/demo", show_default=True, help="Where to write the files.")
@click.option("--amqp", "amqp_url", envvar="VBDT_AMQP_URL", default=None,
              help="Run the exchange over this RabbitMQ (admin URL; rabbitmqctl provisions a vbdt-demo vhost). "
                   "Default: the embedded broker.")
@click.option("--quick", is_flag=True, help="Only the document walkthrough, no exchange.")
@_guarded
def demo_command(out_dir: str, amqp_url: str | None, quick: bool) -> None:
    """Build, sign, validate and exchange documents across the four levels, with receipts."""
    import asyncio

    from vbdt.demo import run_demo, run_exchange_demo

    run_demo(Path(out_dir), echo=click.echo)
    if not quick:
        asyncio.run(run_exchange_demo(Path(out_dir), amqp_url=amqp_url, echo=click.echo))


@main.group("broker")
def broker_group() -> None:
    """RabbitMQ administration for vbdt."""


@broker_group.command("provision")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one).")
@click.option("--select", "selectors", multiple=True, metavar="SELECTOR", help="Only these agencies (default: all).")
@click.option("--vhost", default="vbdt", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Host the agencies connect to.")
@click.option("--port", default=5672, show_default=True, type=int)
@click.option("--admin", default="guest", show_default=True, help="Existing broker user given full rights on the vhost.")
@click.option("--management-url", default=None, help="Use the management API (http://user:pass@host:15672) instead of rabbitmqctl.")
@click.option("-o", "--output", "output", required=True, metavar="FILE", help="Where to write each agency's AMQP URL (JSON, mode 600).")
@_guarded
def broker_provision(directory_path: str | None, selectors: Sequence[str], vhost: str, host: str, port: int, admin: str,
                     management_url: str | None, output: str) -> None:
    """Create the vhost, topology and one broker user per agency (own inbox only)."""
    from vbdt.broker import provision
    from vbdt.resources import example_directory_path

    directory = Directory.load(directory_path or example_directory_path())
    agencies = directory.select(*selectors) if selectors else list(directory)
    urls = provision([str(a.organ_id) for a in agencies], vhost=vhost, host=host, port=port, admin=admin,
                     management_url=management_url)
    out = Path(output)
    out.write_text(json.dumps(urls, indent=1))
    out.chmod(0o600)
    click.echo(f"provisioned {len(urls)} agencies on vhost {vhost}; credentials in {output}")


def _agency_options(func: F) -> F:
    for option in reversed([
        click.option("--as", "organ_id", metavar="ORGANID", help="The agency (default: the document's sender)."),
        click.option("--keys", "keys_dir", metavar="DIR", required=True,
                     help="Folder with <OrganId>.key.pem/.cert.pem, ca.pem (as `vbdt pki init` writes), signer.*.pem optional."),
        click.option("--amqp", "amqp_url", envvar="VBDT_AMQP_URL", default=None, help=AMQP_HELP),
        click.option("--credentials", metavar="FILE", help="The JSON of `vbdt broker provision`: the agency's URL is taken from it."),
        click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one)."),
        click.option("--ledger", "ledger_path", metavar="FILE", help="Ledger file (default: .vbdt/<OrganId>.db)."),
        click.option("--json", "as_json", is_flag=True),
    ]):
        func = option(func)
    return func


async def _open_agency(organ_id: str, keys_dir: str, amqp_url: str | None, credentials: str | None,
                       directory_path: str | None, ledger_path: str | None, **options: Any) -> Any:
    from vbdt.agency import Agency
    from vbdt.amqp import DEFAULT_URL, AmqpTransport
    from vbdt.keys import SigningKey
    from vbdt.ledger import SqliteLedger
    from vbdt.resources import example_directory_path

    directory = Directory.load(directory_path or example_directory_path())
    directory.get(organ_id)  # UnknownAgency with a clear message
    folder = Path(keys_dir)
    key = SigningKey.from_pem(folder / f"{organ_id}.key.pem", folder / f"{organ_id}.cert.pem")
    person = SigningKey.from_pem(folder / "signer.key.pem", folder / "signer.cert.pem") if (folder / "signer.key.pem").exists() else None
    url = amqp_url
    if credentials:
        try:
            url = json.loads(Path(credentials).read_text())[organ_id]
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"{credentials}: no AMQP URL for {organ_id} ({exc})") from None
    transport = await AmqpTransport.connect(url or DEFAULT_URL, declare=not credentials)
    ledger = SqliteLedger(ledger_path or Path(".vbdt") / f"{organ_id}.db")
    agency = Agency(organ_id, transport=transport, ledger=ledger, key=key, trust=folder / "ca.pem", directory=directory,
                    person=person, seal=key if person else None, **options)
    await agency.open()
    return agency


@main.command("send")
@click.argument("file")
@click.option("--to", "to", multiple=True, metavar="SELECTOR", help="Recipients: OrganIds or selectors (default: the file's To).")
@_agency_options
@_guarded
def send_command(file: str, to: Sequence[str], organ_id: str | None, keys_dir: str, amqp_url: str | None,
                 credentials: str | None, directory_path: str | None, ledger_path: str | None, as_json: bool) -> None:
    """Sign and send an edXML FILE to its recipients (or --to selectors); print what the broker confirmed."""
    import asyncio

    from vbdt.validation import read

    document = read(Path(file))
    if not isinstance(document, Document):
        raise UsageError(f"{file} is a status message; send documents")
    sender = organ_id or str(document.sender.organ_id)

    async def run() -> Any:
        agency = await _open_agency(sender, keys_dir, amqp_url, credentials, directory_path, ledger_path)
        try:
            return await agency.send(document, to=list(to) or None)
        finally:
            await agency.transport.close()
            agency.ledger.close()

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps({"document_id": result.document_id, "recipients": result.recipients,
                               "unroutable": result.unroutable, "pending": result.pending}, ensure_ascii=False, indent=2))
    else:
        ok = len(result.recipients) - len(result.unroutable) - len(result.pending)
        click.echo(f"{result.document_id}: confirmed by the broker for {ok} of {len(result.recipients)} recipients")
        for recipient, reason in {**result.unroutable, **result.pending}.items():
            click.echo(f"  {recipient}: {reason}")
    if result.unroutable or result.pending:
        sys.exit(EXIT_INVALID)


@main.command("listen")
@click.option("--out", "out_dir", default="inbox", show_default=True, help="Folder to store received documents in.")
@click.option("--count", type=int, default=None, help="Stop after this many documents.")
@click.option("--idle", type=float, default=None, help="Stop after this many seconds without a message.")
@click.option("--no-publisher-check", is_flag=True, help="For brokers without per-agency users (everyone publishes as one user).")
@_agency_options
@_guarded
def listen_command(out_dir: str, count: int | None, idle: float | None, no_publisher_check: bool, organ_id: str | None,
                   keys_dir: str, amqp_url: str | None, credentials: str | None, directory_path: str | None,
                   ledger_path: str | None, as_json: bool) -> None:
    """Receive as --as ORGANID: verify, store to --out, acknowledge (signed 01); receipts update the ledger."""
    import asyncio
    import re

    if not organ_id:
        raise UsageError("--as ORGANID is required")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)

    async def run() -> int:
        agency = await _open_agency(organ_id, keys_dir, amqp_url, credentials, directory_path, ledger_path,
                                    check_publisher=not no_publisher_check)
        seen = 0
        try:
            iterator = agency.inbox().__aiter__()
            while count is None or seen < count:
                try:
                    item = await asyncio.wait_for(iterator.__anext__(), idle)
                except (TimeoutError, StopAsyncIteration):
                    break
                seen += 1
                name = re.sub(r"[^0-9A-Za-z.-]+", "_", item.document_id) + ".edxml"
                stored = agency.ledger.incoming(item.sender, item.document_id, item._stored_as)
                if stored is not None:
                    (folder / name).write_bytes(stored.body)
                line = {"kind": item.kind, "document_id": item.document_id, "from": item.sender, "file": str(folder / name)}
                click.echo(json.dumps(line, ensure_ascii=False) if as_json else f"{item.kind} {item.document_id} from {item.sender} -> {folder / name}")
            await iterator.aclose()
        finally:
            await agency.transport.close()
            agency.ledger.close()
        return seen

    asyncio.run(run())


@main.command("status")
@click.argument("document_id", required=False)
@click.option("--as", "organ_id", required=True, metavar="ORGANID", help="The sending agency whose ledger to read.")
@click.option("--ledger", "ledger_path", metavar="FILE", help="Ledger file (default: .vbdt/<OrganId>.db).")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def status_command(document_id: str | None, organ_id: str, ledger_path: str | None, as_json: bool) -> None:
    """Per-recipient states of DOCUMENT_ID (all documents when omitted), overdue ones marked."""
    from vbdt.ledger import SqliteLedger

    path = Path(ledger_path or Path(".vbdt") / f"{organ_id}.db")
    if not path.exists():
        raise UsageError(f"{path}: no ledger here (send something first, or give --ledger)")
    ledger = SqliteLedger(path)
    try:
        documents = [d for d in ledger.documents() if document_id in (None, d.document_id)]
        if document_id and not documents:
            raise UsageError(f"{document_id} is not in the ledger of {organ_id}")
        overdue = {(o.document_id, o.recipient): o.why for o in ledger.overdue()}
        report: list[dict[str, Any]] = [{"document_id": d.document_id, "subject": d.subject, "due_date": d.due_date.isoformat() if d.due_date else None,
                   "recipients": [{"organ_id": x.recipient, "state": x.state.value, "label": x.state.label, "reason": x.reason,
                                   "updated_at": x.updated_at.isoformat(), "overdue": overdue.get((d.document_id, x.recipient))}
                                  for x in ledger.deliveries(d.document_id)]} for d in documents]
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(report if document_id is None else report[0], ensure_ascii=False, indent=2))
        return
    for entry in report:
        click.echo(f"{entry['document_id']}  {entry['subject']}")
        for r in entry["recipients"]:
            mark = f"  QUÁ HẠN: {r['overdue']}" if r["overdue"] else ""
            why = f" — {r['reason']}" if r["reason"] else ""
            click.echo(f"  {r['organ_id']:<15} {r['state']:<16} {r['label']}{why}{mark}")


@main.group("pki")
def pki_group() -> None:
    """A TEST-ONLY PKI for demos and tests."""


@pki_group.command("init")
@click.argument("out_dir", metavar="DIR")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one).")
@click.option("--select", "selectors", multiple=True, metavar="SELECTOR", help="Only these agencies (default: all).")
@click.option("--ec", is_flag=True, help="ECDSA P-256 keys instead of RSA 2048.")
@_guarded
def pki_init(out_dir: str, directory_path: str | None, selectors: Sequence[str], ec: bool) -> None:
    """Write DIR/ca.pem and DIR/<OrganId>.key.pem / .cert.pem for each agency (TEST ONLY)."""
    from vbdt.pki import TestPki
    from vbdt.resources import example_directory_path

    directory = Directory.load(directory_path or example_directory_path())
    agencies = directory.select(*selectors) if selectors else list(directory)
    pki = TestPki.create([(str(a.organ_id), a.name) for a in agencies], kind="ec" if ec else "rsa")
    pki.write(Path(out_dir))
    click.echo(f"wrote a TEST PKI for {len(agencies)} agencies and one signing person to {out_dir} "
               "(ca.pem is the trust anchor; never use these keys for real documents)")


def _key(key: str, cert: str, chain: str | None, passphrase: str | None) -> SigningKey:
    from vbdt.keys import SigningKey

    secret = passphrase.encode() if passphrase else None
    if key.lower().endswith((".p12", ".pfx")):
        return SigningKey.from_pkcs12(key, secret)
    return SigningKey.from_pem(key, cert, chain, secret)


@main.command("sign")
@click.argument("file")
@click.option("-o", "--output", required=True, metavar="OUT")
@click.option("--key", required=True, metavar="KEY", help="PEM private key, or a .p12/.pfx file.")
@click.option("--cert", default=None, metavar="CERT", help="PEM certificate (and chain); not needed with .p12.")
@click.option("--chain", default=None, metavar="FILE", help="PEM intermediate certificates.")
@click.option("--passphrase", envvar="VBDT_KEY_PASSPHRASE", default=None, help="Key passphrase (or VBDT_KEY_PASSPHRASE).")
@_guarded
def sign_command(file: str, output: str, key: str, cert: str | None, chain: str | None, passphrase: str | None) -> None:
    """Sign an edXML FILE (XML-DSig, the edXML profile) and write OUT."""
    from vbdt.signing import sign
    from vbdt.validation import read

    if cert is None and not key.lower().endswith((".p12", ".pfx")):
        raise UsageError("--cert is required with a PEM key")
    signing_key = _key(key, cert or "", chain, passphrase)
    read(Path(file))  # strict: never sign what does not validate
    Path(output).write_bytes(sign(_read_bytes(file), signing_key))
    click.echo(f"signed {file} -> {output} as {signing_key.certificate.subject.rfc4514_string()}")


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None


@main.command("verify")
@click.argument("file")
@click.option("--trust", required=True, metavar="CA.pem", help="Trust anchors (PEM).")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (pinned fingerprints).")
@click.option("--legacy-sha1", is_flag=True, help="Accept SHA-1 signatures (reported as weak).")
@click.option("--pdf", "pdf_policy", type=click.Choice(["require", "report", "ignore"]), default="report",
              show_default=True, help="What to do with PDF attachments that are not original-valid.")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def verify_command(file: str, trust: str, directory_path: str | None, legacy_sha1: bool, pdf_policy: str,
                   as_json: bool) -> None:
    """Verify a signed edXML FILE: exit 0 valid, 1 invalid with the reason."""
    from vbdt.packaging import unpack

    opened = unpack(_read_bytes(file), trust=trust, directory=_load_directory(directory_path),
                    legacy_sha1=legacy_sha1, pdf_policy=pdf_policy)  # type: ignore[arg-type]
    v = opened.verified
    summary = {
        "valid": True, "agency": v.agency, "signer": v.signer, "binding": v.binding, "chain": v.chain,
        "signature_algorithm": v.signature_algorithm, "digest_algorithm": v.digest_algorithm,
        "signing_time": v.signing_time.isoformat() if v.signing_time else None, "weak": v.weak,
        "warnings": v.warnings, "pdfs": {name: r.to_dict() for name, r in opened.pdfs.items()},
    }
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    click.echo(f"{file}: valid signature of {v.agency} ({v.signer}), bound by {v.binding}, {v.signature_algorithm}")
    for warning in v.warnings:
        click.echo(f"  warning: {warning}")
    for name, result in opened.pdfs.items():
        click.echo(f"  {name}: {'original-valid' if result.original_valid else 'NOT original-valid: ' + '; '.join(result.reasons)}")


@main.group("pdf")
def pdf_group() -> None:
    """PAdES signatures of PDFs (the person's, then the agency's seal)."""


@pdf_group.command("sign")
@click.argument("file", metavar="IN.pdf")
@click.option("-o", "--output", required=True, metavar="OUT.pdf")
@click.option("--signer-key", metavar="KEY")
@click.option("--signer-cert", metavar="CERT")
@click.option("--seal-key", metavar="KEY")
@click.option("--seal-cert", metavar="CERT")
@click.option("--tsa", metavar="URL", help="RFC 3161 time-stamp server: PAdES B-T instead of B-B.")
@click.option("--visible", is_flag=True, help="Draw the signature and the seal on the last page.")
@click.option("--passphrase", envvar="VBDT_KEY_PASSPHRASE", default=None)
@_guarded
def pdf_sign(file: str, output: str, signer_key: str | None, signer_cert: str | None, seal_key: str | None,
             seal_cert: str | None, tsa: str | None, visible: bool, passphrase: str | None) -> None:
    """Sign IN.pdf: the competent person first, then the agency seal."""
    from vbdt.pades import sign_pdf

    def load(key: str | None, cert: str | None, what: str) -> SigningKey | None:
        if key is None:
            return None
        if cert is None and not key.lower().endswith((".p12", ".pfx")):
            raise UsageError(f"--{what}-cert is required with --{what}-key")
        return _key(key, cert or "", None, passphrase)

    person, seal = load(signer_key, signer_cert, "signer"), load(seal_key, seal_cert, "seal")
    if person is None and seal is None:
        raise UsageError("give --signer-key/--signer-cert, --seal-key/--seal-cert, or both")
    Path(output).write_bytes(sign_pdf(_read_bytes(file), person=person, seal=seal, timestamper=tsa, visible=visible))
    click.echo(f"signed {file} -> {output}")


@pdf_group.command("verify")
@click.argument("file", metavar="IN.pdf")
@click.option("--trust", required=True, metavar="CA.pem")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def pdf_verify(file: str, trust: str, as_json: bool) -> None:
    """Verify every signature of IN.pdf: exit 0 original-valid, 1 otherwise."""
    from vbdt.pades import verify_pdf

    result = verify_pdf(_read_bytes(file), trust=trust)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        for sig in result.signatures:
            state = "valid" if sig.valid else "INVALID: " + ", ".join(sig.problems)
            when = f"{sig.signing_time:%Y-%m-%d %H:%M:%S %Z}" if sig.signing_time else "?"
            click.echo(f"{sig.field_name}: {sig.role} {sig.signer}, signed {when}: {state}")
        verdict = "original-valid" if result.original_valid else "NOT original-valid: " + "; ".join(result.reasons)
        click.echo(f"{file}: {verdict}")
    if not result.original_valid:
        sys.exit(EXIT_INVALID)


if __name__ == "__main__":  # pragma: no cover
    main()
