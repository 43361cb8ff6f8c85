"""Vectors for the page's crypto module (web/iotsec.js), made from the roots iotsec-doctor grant
kept: sealed readings as a kit seals them (libiotsec/reading.h, the same construction as
tests/integration/129-doctor-tool.sh), good ones and bad ones, and each stream's "wrapped" as
the relay hands it to the doctor (relayd.h: RSA-OAEP-SHA256 of {"kit","start","root"} to the
doctor's certificate key), plus one wrapped to another key.

    vectors.py ROOTS_DIR DOCTOR_CRT OTHER_CRT NOW_MS > vectors.json

The good readings are also printed, hex, to the file named by $GOOD_LINES, for iotsec-doctor
read to open: what the page opens, the C opens too.
"""
import base64
import glob
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

roots_dir, doctor_crt, other_crt, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
OAEP = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)


def pub(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).public_key()


def key_at(r, e):
    k = base64.b64decode(r["root"])
    for i in range(r["start"], e + 1):
        k = HKDF(hashes.SHA256(), 32, b"iotsec stream v1", struct.pack(">I", i)).derive(k)
    return k


def seal(r, epoch, seq, plain, device="kit1", flags=0, kind=2, key=None, stream=None, t=None):
    dev = device.encode()
    head = bytes([1, kind, flags, len(dev)]) + dev + bytes.fromhex(stream or r["stream"])
    head += struct.pack(">IQq", epoch, seq, now - 1000 * (100 - seq) if t is None else t)
    head += os.urandom(12)
    return head + AESGCM(key or key_at(r, epoch)).encrypt(head[-12:], plain, head)


def pt(sensor, value, unit, emergency=False, threshold=30):
    d = {"sensor": sensor, "value": value, "unit": unit}
    if emergency:
        d.update(emergency=True, threshold=threshold)
    return json.dumps(d, separators=(",", ":")).encode()


roots = {}
for p in glob.glob(roots_dir + "/*.json"):
    r = json.load(open(p))
    roots["new" if os.path.basename(p) == "kit1.json" else "old"] = r
old, new = roots["old"], roots["new"]
doctor, other = pub(doctor_crt), pub(other_crt)


def wrapped(r, to=doctor, **change):
    g = {"kit": r["kit"], "start": r["start"], "root": r["root"]}
    g.update(change)
    return base64.b64encode(to.encrypt(json.dumps(g, separators=(",", ":")).encode(), OAEP)).decode()


good, bad = [], []


def ok(r, epoch, seq, sensor, value, unit, emergency=False):
    b = seal(r, epoch, seq, pt(sensor, value, unit, emergency), flags=1 if emergency else 0)
    v = {"sensor": sensor, "value": value, "unit": unit, "emergency": emergency}
    if emergency:
        v["threshold"] = 30
    good.append({"stream": r["stream"], "hex": b.hex(), "epoch": epoch, "seq": seq,
                 "time_ms": now - 1000 * (100 - seq), "value": v})


def no(why, r, b):
    bad.append({"stream": r["stream"], "hex": b.hex() if isinstance(b, bytes) else b, "why": why})


ok(old, old["start"], 1, "pulse", 72, "/min")
ok(old, old["start"] + 8, 2, "spo2", 97.5, "%")
ok(old, old["start"] + 8, 3, "body_temp", 36.6, "C")
ok(new, 3, 1, "pulse", 25, "/min", emergency=True)
ok(new, 4, 2, "pulse", 71, "/min")
ok(new, 700, 3, "pulse", -0.25, "/min")  # far along the chain
ok(new, 4, 4, "spo2", 1e-3, "%")         # an earlier epoch after a later one

b = bytearray(seal(new, 4, 5, pt("pulse", 70, "/min")))
b[-20] ^= 1
no("damaged", new, bytes(b))
b = bytearray(seal(new, 4, 6, pt("pulse", 70, "/min")))
b[10] ^= 1                                                  # the header is the AAD
no("header changed", new, bytes(b))
no("another stream", new, seal(new, 4, 7, pt("pulse", 70, "/min"), stream="ab" * 16))
no("before start", old, seal(old, old["start"] - 1, 8, pt("pulse", 70, "/min"),
                             key=base64.b64decode(old["root"])))
no("another device", new, seal(new, 5, 9, pt("pulse", 70, "/min"), device="kit2"))
no("flag, no record", new, seal(new, 5, 10, pt("pulse", 70, "/min"), flags=1))
no("record, no flag", new, seal(new, 5, 11, pt("pulse", 70, "/min", True)))
no("value a string", new, seal(new, 5, 12, b'{"sensor":"pulse","value":"70","unit":"/min"}'))
no("extra field", new, seal(new, 5, 13, b'{"sensor":"pulse","value":70,"unit":"/min","x":1}'))
no("wrong epoch key", new, seal(new, 6, 14, pt("pulse", 71, "/min"), key=key_at(new, 5)))
no("group kind", new, seal(new, 5, 15, pt("pulse", 70, "/min"), kind=1))
no("unknown flag", new, seal(new, 5, 16, pt("pulse", 70, "/min"), flags=2))
no("version 2", new, b"\x02" + seal(new, 5, 17, pt("pulse", 70, "/min"))[1:])
g = seal(new, 5, 18, pt("pulse", 70, "/min"))
no("truncated", new, g[:40])
no("no ciphertext", new, g[:4 + 4 + 16 + 4 + 8 + 8 + 12] + g[-16:])
no("too long", new, g + b"\0" * 300)
no("seq 0", new, seal(new, 5, 0, pt("pulse", 70, "/min")))

print(json.dumps({
    "now_ms": now,
    "streams": [
        {"stream": r["stream"], "kit": r["kit"], "start": r["start"], "root": r["root"],
         "wrapped": wrapped(r),
         "keys": {str(e): key_at(r, e).hex() for e in (r["start"], r["start"] + 1, r["start"] + 8)}}
        for r in (old, new)],
    "bad_wrapped": [
        {"why": "wrapped to another key", "stream": new["stream"], "wrapped": wrapped(new, to=other)},
        {"why": "another stream's root", "stream": old["stream"], "wrapped": wrapped(new)},
        {"why": "start 0", "stream": new["stream"], "wrapped": wrapped(new, start=0)},
        {"why": "short root", "stream": new["stream"],
         "wrapped": wrapped(new, root=base64.b64encode(b"x" * 16).decode())},
        {"why": "kit missing", "stream": new["stream"], "wrapped": base64.b64encode(doctor.encrypt(
            json.dumps({"start": 3, "root": new["root"]}).encode(), OAEP)).decode()},
        {"why": "not base64", "stream": new["stream"], "wrapped": "***"},
    ],
    "good": good,
    "bad": bad,
}))
with open(os.environ["GOOD_LINES"], "w") as f:
    for v in good:
        f.write(v["hex"] + "\n")
