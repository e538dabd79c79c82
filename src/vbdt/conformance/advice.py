"""Why each finding matters to the receiving agency, and how the sending system fixes it.

One entry per finding code: the ``EDX`` codes of :data:`vbdt.edxml.findings.CODES` and the codes
the conformance checks add themselves (``XML``, ``DECL``, ``PREFIX``, ``SIG-*``, ``PDF``). The
texts are addressed to the vendor of the system that wrote the package.
"""

from __future__ import annotations

__all__ = ["ADVICE", "Advice", "advice_for"]

Advice = tuple[str, str]
"""(why it matters, how to fix it)."""

_SCHEMA_WHY = "Receivers validate against the QCVN 102:2016 XSD first; a package that breaks it is refused whole."
_VARIANT_WHY = ("Readers that follow the standard (the national axis' SDKs, vbdt in strict mode) refuse or "
                "misread this form; vbdt reads it only leniently.")
_SIG_WHY = ("Without a verifiable XML-DSig signature the receiver cannot prove who sent the package or "
            "that it was not changed; vbdt and the national axis refuse it.")

ADVICE: dict[str, Advice] = {
    # checks of their own
    "XML": ("A file that is not well-formed, safe XML with the edXML root cannot be read by any receiver.",
            "Write UTF-8 XML with the root {http://www.mic.gov.vn/TBT/QCVN_102_2016}edXML, no DOCTYPE and no "
            "entity declarations, with an XML serialiser (never by concatenating strings)."),
    "DECL": ("Some receivers sniff the first bytes for '<?xml' and UTF-8; anything else is decoded wrongly or refused.",
             "Start the file with <?xml version=\"1.0\" encoding=\"UTF-8\"?> and encode it in UTF-8."),
    "PREFIX": ("Several DMS readers look elements up by their prefixed name (edXML:StatusCode), not by namespace; "
               "another prefix or the default namespace makes them find nothing.",
               "Declare xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\" once on the root and write every "
               "element as edXML:Name (the root too: <edXML:edXML>)."),
    "SIG-PROFILE": (_SIG_WHY,
                    "Sign with one enveloped ds:Signature, last child of edXMLHeader: one Reference URI=\"\", the "
                    "enveloped-signature then exclusive C14N transforms, RSA-SHA256 (or ECDSA-P256-SHA256), SHA-256 "
                    "digest, KeyInfo/X509Data with the certificate and its chain."),
    "SIG-VALUE": ("The signature does not match the content: the package was changed after signing, or signed "
                  "over other bytes than those sent.",
                  "Sign the final bytes last and send exactly those bytes (no re-indentation, no re-encoding after "
                  "signing)."),
    "SIG-CHAIN": ("The receiver trusts only certificates that chain to the national CAs it configured; any other "
                  "signer is refused.",
                  "Sign with the agency's certificate issued by the trusted CA, in its validity period, and put the "
                  "intermediate certificates in KeyInfo/X509Data."),
    "SIG-BINDING": ("A valid signature by another agency's certificate proves nothing about From: the receiver "
                    "refuses it as a possible impersonation.",
                    "Sign with the certificate of the agency named in From/OrganId (its subject UID is that OrganId, "
                    "or the directory pins its fingerprint for it)."),
    "SIG-WEAK": ("SHA-1 is broken for signatures; it is accepted only by legacy verification and will stop working.",
                 "Sign with RSA-SHA256 and a SHA-256 digest."),
    "PDF": ("Under Decree 30/2020 the attached PDF has the value of the original only when it carries the "
            "competent person's signature and, after it, the sending agency's seal.",
            "Sign each PDF with PAdES: first the competent person's certificate, then the agency's seal certificate "
            "(bound to From/OrganId); change nothing after the seal."),
    # 0xx XML and schema
    "EDX001": (_SCHEMA_WHY, "Fix the element named in the message: the XSD's name, order, cardinality and type."),
    # 1xx identifiers and agencies
    "EDX101": ("Routing on the axis is by OrganId; one not in the four-group form (000.00.00.H54) reaches nobody.",
               "Use the agency's code from the Decision 20/2020 catalogue: four dot-separated groups."),
    "EDX102": ("An agency the directory does not know has no inbox: the package cannot be delivered to it.",
               "Take recipients from the current national directory; remove agencies that no longer exist."),
    "EDX103": ("A document without a recipient is delivered to nobody.", "Add at least one To element."),
    "EDX104": ("A recipient named twice receives the document twice and answers twice.", "Name each recipient once."),
    "EDX105": ("The sender would receive its own document and answer it.", "Remove the sender from To."),
    "EDX106": ("Clerks and registers show OrganName; without it the receiver shows a bare code.",
               "Write OrganName (the agency's official name) in From and every To."),
    "EDX107": ("Tax codes, hub codes, bare level-1 codes and axis hops are not agencies; they cannot be routed or "
               "answered.", "Use the agency's own four-group OrganId."),
    "EDX108": ("The text 'null' is a serialisation bug; the entry it names is dropped.",
               "Omit the element instead of writing null."),
    "EDX110": ("Receivers match status messages and changes to documents by DocumentId.",
               "Write DocumentId as {From OrganId},{yyyy/MM/dd},{number/notation}."),
    "EDX111": ("A DocumentId naming another sender collides with that sender's documents.",
               "Build DocumentId from the sender's own OrganId."),
    "EDX112": ("The DocumentId's date must be the PromulgationDate, or receipts are filed under the wrong document.",
               "Build DocumentId from PromulgationDate."),
    "EDX113": ("The DocumentId's number/notation must be the Code, or receipts are filed under the wrong document.",
               "Build DocumentId from CodeNumber/CodeNotation."),
    # 2xx dates and numbers
    "EDX201": ("An impossible date cannot be stored or compared; the package is refused.",
               "Write real calendar dates from a date type, never hand-built strings."),
    "EDX202": ("CodeNumber is the register number; registers sort and search it as a number.",
               "Write digits only in CodeNumber (e.g. 07); the letters go in CodeNotation."),
    "EDX203": ("A DueDate before the document exists is always overdue.", "Write a DueDate on or after PromulgationDate."),
    "EDX204": ("A date years ahead is a typing or clock error.", "Check the date and the system clock."),
    "EDX205": ("A negative count is meaningless.", "Write counts of zero or more."),
    "EDX206": ("Readers parse yyyy/MM/dd; dd/MM/yyyy swaps day and month or is refused.",
               "Write dates as yyyy/MM/dd and times as yyyy/MM/dd HH:mm:ss (Vietnam time)."),
    "EDX207": ("A Timestamp without the time reads as midnight; deadlines counted from it are wrong.",
               "Write Timestamp as yyyy/MM/dd HH:mm:ss."),
    "EDX208": ("Receivers file documents by Type and TypeDetail from the national list.",
               "Use Type 1 or 2 and a TypeDetail 0-99 from the list."),
    # 3xx attachments
    "EDX301": ("The manifest is how the receiver knows which files belong to the document; a mismatch hides or "
               "orphans a file.", "List every attachment in edXMLManifest, one reference per attachment."),
    "EDX302": ("Two attachments with one ContentId: the manifest cannot say which is meant.",
               "Give every attachment its own ContentId."),
    "EDX303": ("An attachment that is not base64 cannot be decoded.", "Encode attachments with standard base64."),
    "EDX304": ("An empty attachment is no document.", "Attach the file's bytes, or leave it out."),
    "EDX305": ("The manifest references attachments by cid: URIs.", "Write ContentId as cid:NAME."),
    "EDX306": ("Two attachments with one name overwrite each other when saved.", "Give each attachment a unique name."),
    "EDX307": ("A wrong ContentType makes the receiver open the file with the wrong program, or refuse it.",
               "Write the file's real MIME type (application/pdf for a PDF)."),
    "EDX308": ("An unknown MIME type cannot be opened by the receiver.", "Use a registered MIME type."),
    "EDX309": ("A ZIP around one file hides its type and its signatures from the receiver.",
               "Attach the file itself, not a one-file ZIP."),
    # 4xx status messages
    "EDX401": ("A status message that does not name the document cannot be filed.",
               "Fill ResponseFor with the document's OrganId, Code, PromulgationDate and DocumentId."),
    "EDX402": ("A rejection without a reason leaves the sender unable to correct and resend.",
               "Write the reason in Description when StatusCode is 02 (or 16)."),
    "EDX403": ("Readers compare StatusCode as text: '3' is not '03'.", "Write status codes with two digits: 01-06, 13, 15, 16."),
    # 5xx trace and business
    "EDX501": ("A revocation, update or replacement must name the document it changes, or it changes nothing.",
               "Fill Bussiness/BussinessDocumentInfo with the concerned document's DocumentId."),
    "EDX502": ("A replacement that lists nothing replaces nothing.", "List the replaced documents in ReplacementInfoList."),
    "EDX503": ("The sender's TraceHeader dates the sending; receivers count deadlines from it.",
               "Add a TraceHeader with the sender's OrganId and the sending time."),
    "EDX510": ("SOAP header attributes are not part of edXML; strict readers refuse them.",
               "Write TraceHeaderList without id, version, mustUnderstand and actor."),
    "EDX511": ("A TraceHeader without an OrganId cannot be traced to an agency.", "Write the OrganId of every hop."),
    "EDX512": ("Without Bussiness the receiver cannot tell a new document from a change.",
               "Write TraceHeaderList with its TraceHeaders and Bussiness/BussinessDocType."),
    # 9xx real-world variants
    "EDX901": (_SIG_WHY, "Put the signature in the XML-DSig namespace: <ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">."),
    "EDX902": ("Readers that walk children by position (several DMS do) misread elements out of the SDK order.",
               "Write the elements in the order of the SDK samples (vbdt/edxml/order.py, docs/findings.md)."),
    "EDX903": (_VARIANT_WHY, "Write ResponseFor/Code as CodeNumber and CodeNotation elements."),
    "EDX904": ("SHA-1 is broken for signatures; receivers refuse it unless legacy verification is on.",
               "Sign with RSA-SHA256 and a SHA-256 digest."),
    "EDX905": ("A truncated certificate cannot identify the signer: nothing can be verified.",
               "Put the whole DER certificate, base64, in X509Certificate."),
    "EDX906": ("A wrong algorithm URI makes every verifier fail.",
               "Name exclusive C14N as http://www.w3.org/2001/10/xml-exc-c14n#."),
    "EDX907": ("The SDK samples' placeholder signature signs nothing of this package.",
               "Sign each package with the agency's key; never copy the sample's Signature element."),
    "EDX908": ("An empty DigitalSignature element looks like a signature and is none.",
               "Sign the package (ds:Signature), or leave the element out."),
    "EDX909": (_VARIANT_WHY, "Put every element inside edXML in the edXML namespace."),
    "EDX910": (_VARIANT_WHY, "Leave out an optional element that has no value."),
    "EDX911": (_VARIANT_WHY, "Always write DocumentType and PromulgationInfo."),
    "EDX912": ("XML allows nothing before the declaration; strict parsers refuse the file.",
               "Write nothing (no blank line, no byte) before <?xml ...?>."),
    "EDX913": ("A prefix without its namespace declaration is not well-formed XML.",
               "Declare xmlns:xlink=\"http://www.w3.org/1999/xlink\" on the root."),
}
"""Code → (why it matters, how to fix it)."""


def advice_for(code: str) -> Advice:
    """The advice for ``code``; a code without its own entry gets a generic one."""
    return ADVICE.get(code, ("See docs/findings.md for what the code means.",
                             "Correct the element named in the finding, as its message says."))
