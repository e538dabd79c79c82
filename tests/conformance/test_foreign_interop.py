"""Interop with software vbdt did not write: a package signed by the ``xmlsec1`` command line and
published by pika (an independent AMQP client) is received by a running ``vbdt listen``, and the
signed 01 that comes back verifies with ``xmlsec1 --verify``.

Only the unsigned envelope is written by vbdt; the signature, the AMQP publish (exchange, routing
key, ``user_id``, headers as docs/exchange.md describes them) and the check of the answer are foreign.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner
from lxml import etree

from conftest import UNDER_CI, require_broker, require_tool
from vbdt.cli.main import main
from vbdt.edxml.writer import serialize, to_tree
from vbdt.exchange.broker import deprovision
from vbdt.testing import make_document, small_directory

G22, H14 = "000.00.00.G22", "000.00.00.H14"
EDXML = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS = "http://www.w3.org/2000/09/xmldsig#"


def _pika() -> Any:
    try:
        import pika
    except ImportError:
        message = "pika is not installed (the test extra installs it)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    return pika


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """Keys from the test PKI and a provisioned vhost with users for G22 (the foreign sender) and H14."""
    require_broker()
    vhost = f"vbdt-foreign-{uuid.uuid4().hex[:8]}"
    keys, creds = tmp_path / "keys", tmp_path / "creds.json"
    assert cli("pki", "init", str(keys), "--select", G22, "--select", H14)[0] == 0
    code, err = cli("broker", "provision", "--select", G22, "--select", H14, "--vhost", vhost, "-o", str(creds))
    assert code == 0, err
    try:
        yield keys, json.loads(creds.read_text())
    finally:
        deprovision(vhost)


def _signed_by_xmlsec1(keys: Path, tmp_path: Path) -> bytes:
    """An edXML envelope with an XML-DSig template in the profile (enveloped, exc-c14n, RSA-SHA256,
    the certificate in KeyInfo), signed by the xmlsec1 command line with G22's key."""
    xmlsec1 = require_tool("xmlsec1")
    document = make_document(small_directory(), G22, [H14]).model_copy(update={"attachments": []})
    root = to_tree(document)
    header = root.find(f"{{{EDXML}}}edXMLEnvelope/{{{EDXML}}}edXMLHeader")
    assert header is not None
    sig = etree.SubElement(header, f"{{{DS}}}Signature", nsmap={"ds": DS})
    info = etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    ref = etree.SubElement(info, f"{{{DS}}}Reference", URI="")
    transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    etree.SubElement(ref, f"{{{DS}}}DigestValue")
    etree.SubElement(sig, f"{{{DS}}}SignatureValue")
    etree.SubElement(etree.SubElement(etree.SubElement(sig, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate")
    template, signed = tmp_path / "template.edxml", tmp_path / "signed.edxml"
    template.write_bytes(serialize(root))
    key = f"{keys / (G22 + '.key.pem')},{keys / (G22 + '.cert.pem')},{keys / 'intermediate.pem'}"
    done = subprocess.run([xmlsec1, "--sign", "--privkey-pem", key, "--output", str(signed), str(template)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return signed.read_bytes()


def _connection(pika: Any, url: str) -> tuple[Any, str, str]:
    """A pika connection as the agency's broker user; also its user name and vhost."""
    parts = urlsplit(url)
    user, vhost = unquote(parts.username or ""), unquote(parts.path[1:])
    params = pika.ConnectionParameters(host=parts.hostname, port=parts.port or 5672, virtual_host=vhost,
                                       credentials=pika.PlainCredentials(user, unquote(parts.password or "")))
    return pika.BlockingConnection(params), user, vhost


def _start_listen(keys: Path, urls: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    listen = subprocess.Popen(
        [sys.executable, "-m", "vbdt", "listen", "--as", H14, "--keys", str(keys), "--amqp", urls[H14],
         "--ledger", str(tmp_path / "h14.db"), "--out", str(tmp_path / "inbox"), "--count", "1", "--idle", "60", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert listen.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([listen.stderr], [], [], 1)[0]:
            line = listen.stderr.readline()
            if "listening as" in line:
                return listen
            assert line, "vbdt listen ended before listening"
    listen.kill()
    raise AssertionError("vbdt listen did not start")


def test_xmlsec1_signed_pika_published_package_gets_a_signed_01(deployment: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    pika = _pika()
    keys, urls = deployment
    signed = _signed_by_xmlsec1(keys, tmp_path)
    listen = _start_listen(keys, urls, tmp_path)
    try:
        connection, user, _vhost = _connection(pika, urls[G22])
        try:
            channel = connection.channel()
            channel.confirm_delivery()  # as the exchange expects: the broker confirms, unroutable is an error
            channel.basic_publish(
                exchange="vbdt.exchange", routing_key="H14",  # the inbox routing key of 000.00.00.H14
                body=signed, mandatory=True,
                properties=pika.BasicProperties(user_id=user, message_id=f"foreign-{uuid.uuid4().hex}", delivery_mode=2,
                                                content_type="application/xml",
                                                headers={"x-vbdt-kind": "document", "x-vbdt-from": G22}))
        finally:
            connection.close()
        out, err = listen.communicate(timeout=60)
    finally:
        if listen.poll() is None:
            listen.kill()
    assert listen.returncode == 0, err
    (received,) = [json.loads(line) for line in out.splitlines()]
    assert received["from"] == G22 and received["kind"] == "document"
    assert Path(received["file"]).read_bytes() == signed  # stored exactly as the foreign software signed it

    # the answer: a signed 01 in G22's inbox, published by H14's broker user, read with pika
    connection, _user, vhost = _connection(pika, urls[G22])
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)  # a consumer: the inbox has a single active consumer, no basic.get
        method, properties, body = next(channel.consume(f"vbdt.inbox.{G22}", inactivity_timeout=30))
        assert method is not None, "no answer in the sender's inbox"
        channel.basic_ack(method.delivery_tag)
        channel.cancel()
        assert properties.user_id == f"{vhost}/{H14}"
    finally:
        connection.close()
    answer = tmp_path / "answer.edxml"
    answer.write_bytes(body)
    status = etree.fromstring(body)
    assert status.findtext(f".//{{{EDXML}}}StatusCode") == "01"
    assert status.findtext(f".//{{{EDXML}}}ResponseFor/{{{EDXML}}}DocumentId") == received["document_id"]
    verified = subprocess.run([require_tool("xmlsec1"), "--verify", "--trusted-pem", str(keys / "ca.pem"),
                               "--untrusted-pem", str(keys / "intermediate.pem"), str(answer)], capture_output=True, text=True)
    assert verified.returncode == 0 and "OK" in verified.stdout + verified.stderr, verified.stderr
    # and a tampered copy does not verify: xmlsec1 really checked the signature
    answer.write_bytes(body.replace(b">01<", b">03<", 1))
    tampered = subprocess.run([require_tool("xmlsec1"), "--verify", "--trusted-pem", str(keys / "ca.pem"),
                               "--untrusted-pem", str(keys / "intermediate.pem"), str(answer)], capture_output=True, text=True)
    assert tampered.returncode != 0
