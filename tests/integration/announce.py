"""Broadcast a signed I_AM_ON_THE_NETWORK as a device would, for tests of what keyd accepts.

announce.py CERT KEY NAME HOME BROADCAST BODY SECONDS: every 0.3 s for SECONDS, an envelope
(SPEC 4) from NAME of HOME carrying BODY (JSON text), signed with KEY (RSA-PSS-SHA256, salt 32,
by the openssl command) and carrying CERT, to keyd's port 7451 at BROADCAST."""
import base64
import json
import os
import socket
import subprocess
import sys
import time

cert, key, name, home, bcast, body, seconds = sys.argv[1:8]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                     capture_output=True, check=True).stdout
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
end = time.time() + float(seconds)
while time.time() < end:
    msg = json.dumps({"type": "I_AM_ON_THE_NETWORK", "from": name, "home": home,
                      "ts": int(time.time()), "nonce": base64.b64encode(os.urandom(16)).decode(),
                      "body": json.loads(body)}, separators=(",", ":")).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, "-sigopt",
                          "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"],
                         input=msg, capture_output=True, check=True).stdout
    env = {"v": 1, "msg": base64.b64encode(msg).decode(), "sig": base64.b64encode(sig).decode(),
           "cert": base64.b64encode(der).decode()}
    s.sendto(json.dumps(env).encode(), (bcast, 7451))
    time.sleep(0.3)
