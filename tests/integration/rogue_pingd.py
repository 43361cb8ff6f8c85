"""What the rogue hosts of the pingd tests do: each subcommand is one attack on iotsec-pingd, bounded
in time, and stops by itself. pingd listens on net.port + 2 (7452 in the tests).

  rogue_pingd.py crlbait CERT KEY BCAST SECONDS
      an enrolled device claims, in a PINGD_HELLO every 20 ms, a CRL numbered far above any real
      one, and holds every link opened to ask for it without a word
  rogue_pingd.py hellos CERT KEY BCAST SOURCES SECONDS
      an enrolled device's PINGD_HELLO as fast as they can be signed, from each of the source
      addresses (comma-separated) in turn: every one says it moved
  rogue_pingd.py writes FILE SECONDS
      count the times FILE is replaced (a new inode) over SECONDS
  rogue_pingd.py accuse CERT KEY ADDR CONTROLLER TARGET SECONDS
      an enrolled device tells the controller CONTROLLER at ADDR, on a new link every 0.3 s, that
      TARGET is malicious
"""
import os
import select
import socket
import sys
import time

from envelope import Device, frame

PORT = 7452


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def cmd_crlbait(cert, key, bcast, seconds):
    dev = Device(cert, key)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", PORT))
    srv.listen(64)
    held, asked = [], 0
    end = time.time() + float(seconds)
    while time.time() < end:
        udp.sendto(dev.seal("PINGD_HELLO", {"crl": 1 << 62, "qv": 0}), (bcast, PORT))
        ready = select.select([srv] + held, [], [], 0.02)[0]
        for s in ready:
            if s is srv:
                c, _ = srv.accept()
                held.append(c)
                asked += 1
            else:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    held.remove(s)
                    s.close()
    log("asked for a CRL", asked, "times")


def cmd_hellos(cert, key, bcast, srcs, seconds):
    dev = Device(cert, key)
    socks = []
    for a in srcs.split(","):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.bind((a, 0))
        socks.append(s)
    end, sent = time.time() + float(seconds), 0
    while time.time() < end:
        socks[sent % len(socks)].sendto(dev.seal("PINGD_HELLO", {"crl": 0, "qv": 0}),
                                        (bcast, PORT))
        sent += 1
    log("sent", sent, "hellos")


def cmd_writes(path, seconds):
    end, seen, n = time.time() + float(seconds), None, 0
    while time.time() < end:
        try:
            ino = os.stat(path).st_ino
        except OSError:
            ino = None
        if ino != seen and seen is not None:
            n += 1
        seen = ino
        time.sleep(0.0005)
    print(n, flush=True)


def cmd_accuse(cert, key, addr, controller, target, seconds):
    dev = Device(cert, key)
    end, sent = time.time() + float(seconds), 0
    while time.time() < end:
        c = socket.socket()
        c.settimeout(0.5)
        try:
            c.connect((addr, PORT))
            c.sendall(frame(dev.seal("PINGD_MALICIOUS", {"target": target, "failures": 9},
                                     to=controller, id=os.urandom(8).hex())))
            sent += 1
        except OSError:
            pass
        time.sleep(0.3)
        c.close()
    log("accused", target, sent, "times")


if __name__ == "__main__":
    cmds = {"crlbait": cmd_crlbait, "hellos": cmd_hellos, "writes": cmd_writes,
            "accuse": cmd_accuse}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
