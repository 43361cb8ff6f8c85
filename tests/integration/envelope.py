"""Envelopes signed as a device signs them (SPEC 4, libiotsec/envelope.h), for tests that play a
rogue: any field may be set by hand, the timestamp and the sequence number included.

    dev = Device("pi3.crt", "pi3.key")
    wire = dev.seal("I_AM_ON_THE_NETWORK", {})                      # a broadcast
    wire = dev.seal("CLIENT_RING_ACK", {"epoch": 2}, to="hub", id="ab12")  # a unicast
    open_signed(wire)                                               # the signed object, unchecked
"""
import base64
import json
import os
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID

VERSION = 2


def _b64(data):
    return base64.b64encode(data).decode()


class Device:
    def __init__(self, cert_path, key_path):
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), None)
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.fp = cert.fingerprint(hashes.SHA256()).hex()
        subject = cert.subject
        self.name = subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        self.home = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        self.last_seq = 0

    def next_seq(self):
        """As the daemons number their messages: microseconds, strictly increasing."""
        self.last_seq = max(self.last_seq + 1, int(time.time() * 1e6))
        return self.last_seq

    def seal(self, type_, body, to=None, id=None, ts=None, seq=None, with_cert=True,
             sender=None):
        inner = {"type": type_, "from": sender or self.name, "home": self.home,
                 "ts": int(time.time()) if ts is None else ts,
                 "seq": self.next_seq() if seq is None else seq,
                 "nonce": _b64(os.urandom(16)), "body": body}
        if to is not None:
            inner["to"] = to
            inner["id"] = id
        msg = json.dumps(inner, separators=(",", ":")).encode()
        sig = self.key.sign(msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                            hashes.SHA256())
        outer = {"v": VERSION, "msg": _b64(msg), "sig": _b64(sig)}
        if with_cert:
            outer["cert"] = _b64(self.der)
        else:
            outer["fp"] = self.fp
        return json.dumps(outer, separators=(",", ":")).encode()


def open_signed(wire):
    """The signed object inside an envelope, without checking anything."""
    return json.loads(base64.b64decode(json.loads(wire)["msg"]))


def frame(wire):
    """A TCP frame (libiotsec/frame.h): 4-byte big-endian length, then the envelope."""
    return len(wire).to_bytes(4, "big") + wire
