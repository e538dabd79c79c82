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


@main.command("demo")
@click.option("--out", "out_dir", default=".vbdt-run/demo", show_default=True, help="Where to write the files.")
@_guarded
def demo_command(out_dir: str) -> None:
    """Walk through building, writing, validating and inspecting a directive."""
    from vbdt.demo import run_demo

    run_demo(Path(out_dir), echo=click.echo)


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
