"""Signatures, pure: keys, XML-DSig on the envelope, PAdES on the PDFs, packaging of both.

:mod:`.keys` loads keys and trust anchors once; :mod:`.chain` validates a signer's
certificate chain and the signer policy once (the :class:`~.chain.TrustStore`); :mod:`.xmldsig`
signs and verifies the envelope with the sender binding; :mod:`.pades` signs PDFs (competent person, then agency seal) and
verifies them; :mod:`.packaging` does both layers in the right order; :mod:`.pki` makes test
certificate authorities; :mod:`.samplepdf` makes small PDFs for demos and tests.

This layer imports the format (:mod:`vbdt.edxml`) and the directory, never the exchange.
"""
