"""The edXML format (QCVN 102:2016), pure: bytes and objects in, bytes and objects out.

Codes and models (:mod:`.codes`, :mod:`.model`, :mod:`.organid`, :mod:`.attachment`), the hardened
parser (:mod:`.xmlparse`), the lenient reader that repairs real-world quirks (:mod:`.reader`), the
deterministic writer (:mod:`.writer`), the XSD schemas and business rules (:mod:`.schemas`,
:mod:`.rules`) and the findings they report (:mod:`.findings`, :mod:`.validation`).

This layer imports nothing from vbdt but :mod:`vbdt.errors`; it never touches the network.
"""
