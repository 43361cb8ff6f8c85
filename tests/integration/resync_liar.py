"""A node-role insider that answers a neighbour's resync request (SYNC_RQA, resync.h) with lies:
it says it is synced, and when acknowledged sends a SYNC_STATE whose time is AHEAD epochs on.

  resync_liar.py CERT KEY PEER_CERT PORT MODE AHEAD START INTERVAL SECONDS
      answers every SYNC_RQA of PEER_CERT's device heard on UDP PORT, for SECONDS. MODE:
        far       announces epoch now + AHEAD (RPA) and sends a STATE that agrees with it
        schedule  announces epoch now + 1; its STATE says that epoch, with a time AHEAD epochs
                  on and a schedule moved by as much so that the two agree
        rpa       announces epoch now + 1; its STATE says epoch now + 1 + AHEAD, its time too
      START and INTERVAL are the home's stream schedule. Says what it did on stdout.
"""
import base64
import json
import os
import select
import socket
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from envelope import Device, frame, open_signed
from rogue import log, read_frame, wrap_to


def main(cert, key, peer_cert, port, mode, ahead, start, interval, seconds):
    dev = Device(cert, key)
    with open(peer_cert, "rb") as f:
        peer = x509.load_pem_x509_certificate(f.read())
    der = peer.public_bytes(serialization.Encoding.DER)
    peer_name = peer.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    port, ahead, start, interval = int(port), int(ahead), int(start), int(interval)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    u.bind(("0.0.0.0", port))
    end = time.time() + float(seconds)
    while time.time() < end:
        if not select.select([u], [], [], 0.1)[0]:
            continue
        data, src = u.recvfrom(65536)
        try:
            m = open_signed(data)
        except ValueError:
            continue
        if m.get("type") != "SYNC_RQA" or m.get("from") != peer_name:
            continue
        b64nonce = m["body"]["nonce"]
        nid = base64.b64decode(b64nonce).hex()
        now = time.time()
        e = int(now - start) // interval + 1
        sched = start
        if mode == "far":
            announced = state_epoch = e + ahead
            t = now + ahead * interval
        elif mode == "schedule":
            announced = state_epoch = e + 1
            t = now + ahead * interval
            sched = start + ahead * interval
        else:
            announced = e + 1
            state_epoch = e + 1 + ahead
            t = now + ahead * interval
        try:
            with socket.create_connection((src[0], port), timeout=2) as c:
                c.sendall(frame(dev.seal("SYNC_RPA", {"nonce": b64nonce, "synced": True,
                                                      "epoch": announced},
                                         to=peer_name, id=nid)))
                log("answered", peer_name, "synced at epoch", announced)
                f = read_frame(c, 3)
                if not f or open_signed(f).get("type") != "SYNC_ACK":
                    log("not chosen")
                    continue
                body = {"nonce": b64nonce, "time": int(t * 1000), "start": sched,
                        "interval": interval, "epoch": state_epoch, "pool": 1,
                        "stream": base64.b64encode(os.urandom(16)).decode(),
                        "key": wrap_to(der, os.urandom(32))}
                c.sendall(frame(dev.seal("SYNC_STATE", body, to=peer_name, id=nid,
                                         with_cert=False)))
                log("chosen: sent a state of epoch", state_epoch, "time", int(t))
                time.sleep(0.5)
        except OSError as ex:
            log("link to", src[0], "failed:", ex)


if __name__ == "__main__":
    main(*sys.argv[1:])
