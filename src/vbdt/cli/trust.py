"""``vbdt pki init``, ``pki add``, ``sign``, ``verify``, ``pdf sign`` and ``pdf verify``: signatures from the command line.

Keys, certificates and trust anchors are files the library opens itself, so each is checked
first to be a regular, small file (:func:`vbdt.cli.files.input_path`); documents and PDFs are
read bounded (:func:`vbdt.cli.files.read_input`); outputs are written atomically.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vbdt.cli import preflight
from vbdt.cli.exits import EXIT_INVALID, fail
from vbdt.cli.files import input_path, output_dir, output_file, read_document, read_input, write_output
from vbdt.cli.options import limits, load_directory, optional_directory
from vbdt.cli.progress import progress, tracked
from vbdt.errors import SignerMismatch, UsageError

if TYPE_CHECKING:
    from vbdt.trust.keys import SigningKey

__all__ = ["COMMANDS", "pdf_group", "pki_group", "sign_command", "verify_command"]

_PKCS12 = (".p12", ".pfx")


@click.group("pki")
def pki_group() -> None:
    """A TEST-ONLY PKI for demos and tests."""


@pki_group.command("init")
@click.argument("out_dir", metavar="DIR")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one).")
@click.option("--select", "selectors", multiple=True, metavar="SELECTOR", help="Only these agencies (default: all).")
@click.option("--ec", is_flag=True, help="ECDSA P-256 keys instead of RSA 2048.")
@click.option("--force", is_flag=True, help="Replace the test CA already in DIR (its certificates stop verifying).")
def pki_init(out_dir: str, directory_path: str | None, selectors: Sequence[str], ec: bool, force: bool) -> None:
    """Write DIR/ca.pem, the issuing CA and DIR/<OrganId>.key.pem / .cert.pem per agency (TEST ONLY).

    Refuses (exit 1) when DIR already holds a test CA, unless --force. Keys are mode 0600.
    """
    from vbdt.trust.pki import TestPki, existing_ca

    directory = load_directory(directory_path)
    agencies = directory.select(*selectors) if selectors else list(directory)
    folder = output_dir(out_dir)
    found = existing_ca(folder)
    if found and not force:
        fail(f"{out_dir} already holds a test CA ({', '.join(p.name for p in found)}): add agencies to it with "
             "vbdt pki add, or replace it with --force", EXIT_INVALID)
    with progress("issuing certificates", total=len(agencies)) as advance:  # a key pair each: seconds for a province
        pki = TestPki.create(tracked([(str(a.organ_id), a.name) for a in agencies], advance), kind="ec" if ec else "rsa")
    pki.write(folder)
    click.echo(f"wrote a TEST PKI for {len(agencies)} agencies and one signing person to {out_dir} "
               "(ca.pem is the trust anchor; never use these keys for real documents)")


@pki_group.command("add")
@click.argument("out_dir", metavar="DIR")
@click.argument("selectors", nargs=-1, required=True, metavar="ID...")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one).")
@click.option("--ec", is_flag=True, help="ECDSA P-256 keys instead of RSA 2048.")
@click.option("--force", is_flag=True, help="Replace the key and certificate of an agency that has them.")
def pki_add(out_dir: str, selectors: Sequence[str], directory_path: str | None, ec: bool, force: bool) -> None:
    """Certify more agencies (OrganIds or selectors) with the test CA in DIR (TEST ONLY).

    Writes DIR/<OrganId>.key.pem (mode 0600) and .cert.pem for each; refuses (exit 1) an agency
    that already has them, unless --force.
    """
    from vbdt.trust.pki import add_agencies, agency_files, load_issuer

    directory = load_directory(directory_path)
    agencies = directory.select(*selectors)
    folder = _input_folder(out_dir)
    load_issuer(folder)  # no CA there: say so before anything else
    taken = [str(a.organ_id) for a in agencies if any(p.exists() for p in agency_files(folder, str(a.organ_id)))]
    if taken and not force:
        fail(f"{out_dir} already has keys for {', '.join(taken)}: replace them with --force", EXIT_INVALID)
    with progress("issuing certificates", total=len(agencies)) as advance:
        add_agencies(folder, tracked([(str(a.organ_id), a.name) for a in agencies], advance), kind="ec" if ec else "rsa")
    click.echo(f"added {len(agencies)} agencies to the TEST PKI in {out_dir}: "
               f"{', '.join(str(a.organ_id) for a in agencies)}")


def _input_folder(path: str) -> Path:
    """A folder that must exist (the test CA's)."""
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"{path}: {'not a folder' if folder.exists() else 'no such folder'}; "
                         "give the folder of vbdt pki init")
    return folder


def load_key(key: str, cert: str | None, chain: str | None, passphrase: str | None, *, what: str = "") -> SigningKey:
    """A signing key from a PEM key and certificate (and chain), or a PKCS#12 file; every file checked first."""
    from vbdt.trust.keys import SigningKey

    secret = passphrase.encode() if passphrase else None
    key_path = input_path(key, what="key file")
    if key.lower().endswith(_PKCS12):
        return SigningKey.from_pkcs12(key_path, secret)
    if cert is None:
        raise UsageError(f"--{what}cert is required with a PEM key")
    return SigningKey.from_pem(key_path, input_path(cert, what="certificate file"),
                               input_path(chain, what="chain file") if chain else None, secret)


@click.command("sign")
@click.argument("file")
@click.option("-o", "--output", required=True, metavar="OUT")
@click.option("--key", required=True, metavar="KEY", help="PEM private key, or a .p12/.pfx file.")
@click.option("--cert", default=None, metavar="CERT", help="PEM certificate (and chain); not needed with .p12.")
@click.option("--chain", default=None, metavar="FILE", help="PEM intermediate certificates.")
@click.option("--passphrase", envvar="VBDT_KEY_PASSPHRASE", default=None, help="Key passphrase (or VBDT_KEY_PASSPHRASE).")
@click.option("--trust", "trust_path", default=None, metavar="CA.pem",
              help="Trust anchors: the signature of a file signed already (required then) and every PDF attachment "
                   "are verified first.")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (pins; every agency must be known).")
@click.option("--force", is_flag=True, help=f"Allow {preflight.FORCIBLE}.")
def sign_command(file: str, output: str, key: str, cert: str | None, chain: str | None, passphrase: str | None,
                 trust_path: str | None, directory_path: str | None, force: bool) -> None:
    """Sign an edXML FILE (XML-DSig, the edXML profile) and write OUT.

    Pre-flight: the package validates; the key matches its certificate, which is valid now and bound
    to the package's From; a file signed already verifies as From's (``--trust`` required); with
    ``--trust``, every PDF attachment is original-valid (an unsigned one only with ``--force``)."""
    from vbdt.edxml.model import Document
    from vbdt.edxml.validation import read
    from vbdt.trust.xmldsig import sign

    target = output_file(output)
    bounds = limits()
    document = read_document(file, limit=bounds.max_bytes)
    signing_key = load_key(key, cert, chain, passphrase)
    package = read(document, limits=bounds)  # strict: never sign what does not validate
    directory = optional_directory(directory_path)
    organ_id = str(package.sender.organ_id)
    preflight.check_keys(organ_id, directory, signing_key)
    raw = document.getvalue()
    if trust_path is not None or preflight.is_signed(raw, bounds):
        anchors = preflight.require_trust(trust_path, "verify the signature the file carries before signing it again")
        preflight.check_envelope(raw, organ_id=organ_id, trust=anchors, directory=directory, limits=bounds)
        if isinstance(package, Document):
            preflight.check_pdf_attachments(package.attachments, organ_id=organ_id, trust=anchors, directory=directory,
                                            limits=bounds, will_sign=False, force=force)
    if isinstance(package, Document) and directory is not None:
        preflight.check_document(package, directory, bounds)
    write_output(target, sign(raw, signing_key))
    click.echo(f"signed {file} -> {output} as {signing_key.certificate.subject.rfc4514_string()}")


@click.command("verify")
@click.argument("file")
@click.option("--trust", required=True, metavar="CA.pem", help="Trust anchors (PEM).")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (pinned fingerprints).")
@click.option("--legacy-sha1", is_flag=True, help="Accept SHA-1 signatures (reported as weak).")
@click.option("--pdf", "pdf_policy", type=click.Choice(["require", "report", "ignore"]), default="report",
              show_default=True, help="What to do with PDF attachments that are not original-valid.")
@click.option("--json", "as_json", is_flag=True)
def verify_command(file: str, trust: str, directory_path: str | None, legacy_sha1: bool, pdf_policy: str,
                   as_json: bool) -> None:
    """Verify a signed edXML FILE: exit 0 valid, 1 invalid with the reason."""
    from vbdt.trust.packaging import unpack

    anchors = input_path(trust, what="trust anchors file")
    opened = unpack(read_input(file, limit=limits().max_bytes), trust=anchors, directory=optional_directory(directory_path),
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


@click.group("pdf")
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
@click.option("--seal-image", metavar="PNG", help="Image of the seal (a PNG with transparency) drawn in its box; "
              "implies --visible.")
@click.option("--agency-name", metavar="NAME", help="The agency on the stamps (default: the seal certificate's name).")
@click.option("--passphrase", envvar="VBDT_KEY_PASSPHRASE", default=None)
@click.option("--trust", "trust_path", default=None, metavar="CA.pem",
              help="Trust anchors: required for a PDF signed already (its signatures are verified first) and to "
                   "check the result is original-valid.")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (pinned seal certificates).")
def pdf_sign(file: str, output: str, signer_key: str | None, signer_cert: str | None, seal_key: str | None,
             seal_cert: str | None, tsa: str | None, visible: bool, seal_image: str | None, agency_name: str | None,
             passphrase: str | None, trust_path: str | None, directory_path: str | None) -> None:
    """Sign IN.pdf: the competent person first, then the agency seal.

    Pre-flight: every key matches its certificate, which is valid now; the seal's certificate names
    its agency, the person's names none; the signatures IN.pdf carries already verify (``--trust``).
    With ``--trust`` and both keys, the result must be original-valid or nothing is written."""
    from vbdt.trust.keys import certificate_organ_id
    from vbdt.trust.pades import is_signed_pdf, sign_pdf
    from vbdt.trust.stamp import MAX_IMAGE_BYTES

    person = load_key(signer_key, signer_cert, None, passphrase, what="signer-") if signer_key else None
    seal = load_key(seal_key, seal_cert, None, passphrase, what="seal-") if seal_key else None
    if person is None and seal is None:
        raise UsageError("give --signer-key/--signer-cert, --seal-key/--seal-cert, or both")
    if seal_image and seal is None:
        raise UsageError("--seal-image needs the seal: give --seal-key/--seal-cert")
    image = read_input(seal_image, limit=MAX_IMAGE_BYTES) if seal_image else None
    target = output_file(output)
    bounds = limits()
    data = read_input(file, limit=bounds.max_bytes)
    directory = optional_directory(directory_path)
    agency = certificate_organ_id(seal.certificate) if seal is not None else None
    if seal is not None and agency is None:
        raise SignerMismatch(f"the seal's certificate {seal.certificate.subject.rfc4514_string()} names no agency "
                             "(no OrganId in its UID): it is not an agency seal")
    preflight.check_keys(agency or "", directory, person=person, seal=seal)
    anchors = Path(trust_path) if trust_path else None
    if is_signed_pdf(data):
        anchors = preflight.require_trust(trust_path, f"verify the signatures {file} carries before signing it again")
        preflight.check_pdf_signatures(data, file, trust=anchors, agency=agency, directory=directory, limits=bounds,
                                       complete=False)
    signed = sign_pdf(data, person=person, seal=seal, timestamper=tsa, visible=visible or image is not None,
                      agency_name=agency_name, seal_image=image)
    if anchors is not None and person is not None and seal is not None:
        preflight.check_pdf_signatures(signed, output, trust=preflight.require_trust(trust_path, "check the result"),
                                       agency=agency, directory=directory, limits=bounds, complete=True)
    write_output(target, signed)
    click.echo(f"signed {file} -> {output}")


@pdf_group.command("verify")
@click.argument("file", metavar="IN.pdf")
@click.option("--trust", required=True, metavar="CA.pem")
@click.option("--json", "as_json", is_flag=True)
def pdf_verify(file: str, trust: str, as_json: bool) -> None:
    """Verify every signature of IN.pdf: exit 0 original-valid, 1 otherwise."""
    from vbdt.trust.pades import verify_pdf

    anchors = input_path(trust, what="trust anchors file")
    result = verify_pdf(read_input(file, limit=limits().max_bytes), trust=anchors)
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


COMMANDS: list[click.Command] = [pki_group, sign_command, verify_command, pdf_group]
