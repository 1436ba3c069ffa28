"""The organisation's time-stamping authority, in process (RFC 3161 tokens, RFC 5816 ESS
signing-certificate-v2), so that PDF signatures are PAdES B-T without a network call.

A token says "this signature value existed at `at`", signed by the TSA key of the CA
directory (signing/agreements/ca.py, certificate with the critical timeStamping EKU). Validators then
judge the signer's short-lived certificate at that time instead of today. The time is the
`now` the signing service passes in, like every other time in the domain.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.timestamps.api import TimeStamper

# A UUID-based OID (ITU-T X.667, arc 2.25): the policy under which this TSA issues tokens.
TSA_POLICY = "2.25.156712809843302675338457221186306152803"


class LocalTimeStamper(TimeStamper):
    """Issues RFC 3161 tokens dated `at` with the TSA's EC key; `chain` (the CA) is embedded
    next to the TSA certificate so that the token can be verified on its own."""

    def __init__(
        self,
        *,
        cert: asn1_x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        chain: list[asn1_x509.Certificate],
        at: datetime,
    ) -> None:
        super().__init__(include_nonce=True)
        self.tsa_cert = cert
        self.tsa_key = key
        self.chain = chain
        self.at = at.astimezone(UTC)

    def _tst_info(self, req: tsp.TimeStampReq) -> tsp.TSTInfo:
        info = {
            "version": "v1",
            "policy": TSA_POLICY,
            "message_imprint": req["message_imprint"],
            "serial_number": secrets.randbits(63),
            "gen_time": core.GeneralizedTime(self.at),
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self.tsa_cert.subject),
        }
        if req["nonce"].native is not None:
            info["nonce"] = req["nonce"]
        return tsp.TSTInfo(info)

    def _token(self, tst_info: bytes) -> cms.ContentInfo:
        signed_attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("message_digest", hashlib.sha256(tst_info).digest()),
                simple_cms_attribute(
                    "signing_certificate_v2", as_signing_certificate_v2(self.tsa_cert)
                ),
            ]
        )
        signature = self.tsa_key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        sha256 = algos.DigestAlgorithm({"algorithm": "sha256"})
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value=cms.IssuerAndSerialNumber(
                        {
                            "issuer": self.tsa_cert.issuer,
                            "serial_number": self.tsa_cert.serial_number,
                        }
                    ),
                ),
                "digest_algorithm": sha256,
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [sha256],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": cms.ParsableOctetString(tst_info),
                },
                "certificates": [self.tsa_cert, *self.chain],
                "signer_infos": [signer_info],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        token = self._token(self._tst_info(req).dump())
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
