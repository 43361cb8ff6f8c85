"""What the rogue hosts of the multi-host tests do: each subcommand is one attack, bounded in count
and time, and stops by itself.

  rogue.py broadcast CERT KEY ADDR PORT TYPE BODY SECONDS
      every 0.3 s, a signed TYPE carrying BODY (JSON) from CERT's device to ADDR:PORT
  rogue.py flood CERT KEY ADDR PORT TYPE BODY COUNT AHEAD
      COUNT valid signed messages as fast as they can be made, stamped AHEAD seconds in the future
  rogue.py insider CERT KEY BCAST SECONDS ON OFF
      a controller-role device playing controller in bursts: ON seconds of heartbeats and
      answers to every IS_THERE_CONTROLLER heard, then OFF seconds of silence, over and over
  rogue.py idle SECONDS ADDR...
      64 idle TCP connections to keyd at each ADDR, each reopened as soon as it is closed
  rogue.py spoof ADDR PORT COUNT NET16
      COUNT junk UDP datagrams to ADDR:PORT, each from another source address in NET16.0.0/16
  rogue.py sniff IFACE FROM PORT TYPE OUT SECONDS
      watch IFACE for TCP from FROM to PORT, and write the first whole frame carrying an envelope
      of TYPE to OUT
  rogue.py replay FILE ADDR PORT SECONDS
      send the frame in FILE to ADDR:PORT on a new connection every 50 ms
  rogue.py forged CERT KEY ADDR SECONDS RATE [same|new]
      a real device's message with its certificate forged (one byte of the CA's signature
      changed: the same forgery each time, or a new one), to electd at ADDR, RATE a second
  rogue.py poison CERT KEY BCAST SECONDS EPOCH
      a controller-role insider plays controller and gives every device it hears a one-key ring
      of EPOCH
  rogue.py ackloop CERT KEY BCAST SECONDS
      a node-role insider announces a ring it has not, and confirms every delivery at once
  rogue.py queries CERT KEY BCAST COUNT
      COUNT signed IS_THERE_CONTROLLER as fast as they can be made
  rogue.py keys CERT KEY CONTROLLER_CERT ADDR SECONDS
      CLIENT_KEYS of 32 wrapped keys nobody asked for, on link after link
  rogue.py holdlinks CERT KEY ADDR SOURCES SECONDS
      a node-role insider holds links to ADDR from each source address (comma-separated), each
      carrying a CLIENT_START_SESSION that names ADDR's own ring, reopened when closed
  rogue.py ahead CERT KEY BCAST SECONDS AHEAD WHOM
      announces, every 0.3 s, a ring AHEAD epochs above the one device WHOM announces
  rogue.py sessions CERT KEY ADDR PEER SECONDS
      a node-role insider sends PEER at ADDR a CLIENT_START_SESSION of an epoch nobody has, on
      link after link
  rogue.py pingd CERT KEY BCAST SECONDS MODE [CONTROLLER ADDR COUNT]
      a node-role insider speaking pingd's protocol (port 7452): HELLO every 0.3 s, PONG to
      every PING, ALIVE to a SUSPECT naming it, and to every PING_REQ a REPORT that lies as MODE
      says: badmouth (every target unreachable) or goodmouth (every target alive); MODE stuff
      answers as goodmouth and also sends CONTROLLER at ADDR COUNT unsolicited REPORTs (one a
      link, fresh ids, 10 a second), each saying a device it hears is unreachable
  rogue.py pingdforge CERT KEY SECONDS NAME@ADDR...
      a node-role insider whose certificate NAME already knows opens link after link to the
      pingd of each device NAME at ADDR: each carries one valid PINGD_PING and, in the same
      write, by turns another with one byte of its signature changed (forged) or the same bytes
      again (replayed); 4 links a second to each
"""
import base64
import json
import os
import select
import socket
import struct
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from envelope import Device, frame, open_signed

OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(),
                    label=None)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def wrap_to(cert_der, key):
    pub = x509.load_der_x509_certificate(cert_der).public_key()
    return base64.b64encode(pub.encrypt(key, OAEP)).decode()


def read_frame(sock, timeout):
    """One whole frame's envelope from sock, or None."""
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack("!I", buf[:4])[0]:
        d = sock.recv(65536)
        if not d:
            return None
        buf += d
    return buf[4:4 + struct.unpack("!I", buf[:4])[0]]


def b64_16():
    return base64.b64encode(os.urandom(16)).decode()


def cmd_broadcast(cert, key, addr, port, type_, body, seconds):
    dev = Device(cert, key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    end = time.time() + float(seconds)
    while time.time() < end:
        s.sendto(dev.seal(type_, json.loads(body)), (addr, int(port)))
        time.sleep(0.3)


def cmd_flood(cert, key, addr, port, type_, body, count, ahead):
    dev = Device(cert, key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    for _ in range(int(count)):
        wire = dev.seal(type_, json.loads(body), ts=int(time.time()) + int(ahead))
        s.sendto(wire, (addr, int(port)))
    print("sent", count, flush=True)


def cmd_insider(cert, key, bcast, seconds, on, off):
    dev = Device(cert, key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", 7450))
    end = time.time() + float(seconds)
    while time.time() < end:
        burst_end = min(end, time.time() + float(on))
        beat = 0.0
        while time.time() < burst_end:
            if time.time() >= beat:
                s.sendto(dev.seal("I_AM_CONTROLLER", {}), (bcast, 7450))
                beat = time.time() + 0.3
            if select.select([s], [], [], 0.05)[0]:
                data, _ = s.recvfrom(65536)
                try:
                    m = open_signed(data)
                except (ValueError, KeyError):
                    continue
                if m.get("type") == "IS_THERE_CONTROLLER" and m.get("from") != dev.name:
                    answer = {"answer": m["body"]["challenge"]}
                    s.sendto(dev.seal("I_AM_CONTROLLER", answer), (bcast, 7450))
        quiet_end = min(end, time.time() + float(off))
        while time.time() < quiet_end:
            if select.select([s], [], [], 0.05)[0]:
                s.recvfrom(65536)  # heard, not answered


def still_open(conns):
    """The connections of conns the other end has not closed; the rest are closed here."""
    kept = []
    for c in conns:
        if select.select([c], [], [], 0)[0]:
            try:
                gone = c.recv(65536) == b""
            except OSError:
                gone = True
            if gone:
                c.close()
                continue
        kept.append(c)
    return kept


def cmd_idle(seconds, *addrs):
    conns = {a: [] for a in addrs}
    end = time.time() + float(seconds)
    while time.time() < end:
        for a, live in conns.items():
            kept = still_open(live)
            while len(kept) < 64:
                c = socket.socket()
                c.settimeout(0.2)
                try:
                    c.connect((a, 7451))
                except OSError:
                    c.close()
                    break
                kept.append(c)
            conns[a] = kept
        time.sleep(0.05)


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def cmd_spoof(addr, port, count, net16):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    a, b = (int(x) for x in net16.split("."))
    dst = socket.inet_aton(addr)
    payload = b"junk that is no envelope"
    for i in range(int(count)):
        src = bytes([a, b, 1 + i // 250, 1 + i % 250])
        udp_len = 8 + len(payload)
        pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
        udp = struct.pack("!HHHH", 40000 + i % 1000, int(port), udp_len, 0) + payload
        udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp)) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, i & 0xFFFF, 0, 64, 17, 0,
                         src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        s.sendto(ip + udp, (addr, 0))
        if i % 200 == 199:
            time.sleep(0.01)  # let the receiver's socket buffer drain
    print("sent", count, flush=True)


def cmd_sniff(iface, from_addr, port, type_, out, seconds):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
    s.bind((iface, 0))
    src = socket.inet_aton(from_addr)
    streams = {}  # source port -> [next seq, bytes]
    end = time.time() + float(seconds)
    while time.time() < end:
        if not select.select([s], [], [], 0.2)[0]:
            continue
        pkt = s.recv(65536)
        if len(pkt) < 34 or pkt[12:14] != b"\x08\x00":
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6 or ip[12:16] != src:
            continue
        tcp = ip[ihl:struct.unpack("!H", ip[2:4])[0]]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        data = tcp[(tcp[12] >> 4) * 4:]
        if dport != int(port):
            continue
        if tcp[13] & 0x02:  # SYN: the stream starts after it
            streams[sport] = [(seq + 1) & 0xFFFFFFFF, b""]
            continue
        st = streams.get(sport)
        if st is None or seq != st[0] or not data:
            continue
        st[0] = (seq + len(data)) & 0xFFFFFFFF
        st[1] += data
        buf = st[1]
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("!I", buf[:4])[0]:
            n = struct.unpack("!I", buf[:4])[0]
            frame, buf = buf[:4 + n], buf[4 + n:]
            if open_signed(frame[4:]).get("type") == type_:
                with open(out + ".tmp", "wb") as f:
                    f.write(frame)
                os.rename(out + ".tmp", out)
                return
        st[1] = buf
    sys.exit("nothing of type %s seen" % type_)


def cmd_replay(path, addr, port, seconds):
    with open(path, "rb") as f:
        frame = f.read()
    end = time.time() + float(seconds)
    sent = 0
    while time.time() < end:
        try:
            with socket.create_connection((addr, int(port)), timeout=0.5) as c:
                c.sendall(frame)
                sent += 1
        except OSError:
            pass
        time.sleep(0.05)
    print("replayed", sent, flush=True)


def cmd_forged(cert, key, addr, seconds, rate, each="same"):
    dev = Device(cert, key)
    o = json.loads(dev.seal("IS_THERE_CONTROLLER", {"challenge": b64_16()}))
    real = base64.b64decode(o["cert"])
    wires = []
    # One byte of the CA's signature over it changed: the same one, or another each time.
    for i in range(1 if each == "same" else 4096):
        der = bytearray(real)
        der[-1 - i % 128] ^= 1 + i // 128
        wires.append(('{"v":2,"msg":"%s","sig":"%s","cert":"%s"}'
                      % (o["msg"], o["sig"], base64.b64encode(bytes(der)).decode())).encode())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    start, n = time.time(), 0
    end = start + float(seconds)
    while time.time() < end:
        s.sendto(wires[n % len(wires)], (addr, 7450))
        n += 1
        if n % 50 == 0:  # paced in bursts of 50, to RATE a second on average
            time.sleep(max(0.0, start + n / float(rate) - time.time()))
    log("sent", n, "forged datagrams")


def cmd_poison(cert, key, bcast, seconds, epoch):
    dev = Device(cert, key)
    epoch = int(epoch)
    el = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    el.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    el.bind(("0.0.0.0", 7450))
    ann = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ann.bind(("0.0.0.0", 7451))
    end, beat = time.time() + float(seconds), 0.0
    seen, tried = {}, {}
    while time.time() < end:
        if time.time() >= beat:
            el.sendto(dev.seal("I_AM_CONTROLLER", {}), (bcast, 7450))
            beat = time.time() + 0.3
        ready = select.select([el, ann], [], [], 0.05)[0]
        if el in ready:
            m = open_signed(el.recvfrom(65536)[0])
            if m.get("type") == "IS_THERE_CONTROLLER" and m.get("from") != dev.name:
                el.sendto(dev.seal("I_AM_CONTROLLER", {"answer": m["body"]["challenge"]}),
                          (bcast, 7450))
        if ann in ready:
            data, src = ann.recvfrom(65536)
            m, o = open_signed(data), json.loads(data)
            if m.get("type") == "I_AM_ON_THE_NETWORK" and "cert" in o and m["from"] != dev.name:
                seen[m["from"]] = (src[0], base64.b64decode(o["cert"]))
        for name, (addr, der) in list(seen.items()):
            if time.time() < tried.get(name, 0) + 1.0:
                continue
            tried[name] = time.time()
            did = os.urandom(8).hex()
            one = [{"i": 0, "k": wrap_to(der, os.urandom(32))}]
            piece = dev.seal("CLIENT_RING_KEYS", {"epoch": epoch, "keys": one}, to=name, id=did)
            last = dev.seal("CLIENT_RING_END", {"epoch": epoch, "count": 1, "pool": 1,
                                                "group": wrap_to(der, os.urandom(32)),
                                                "start": 1}, to=name, id=did, with_cert=False)
            try:
                with socket.create_connection((addr, 7451), timeout=2) as c:
                    c.sendall(frame(piece) + frame(last))
                    f = read_frame(c, 2)
                    log("to", name, "->", open_signed(f)["type"] if f else "nothing")
            except OSError as e:
                log("to", name, "failed:", e)


def cmd_ackloop(cert, key, bcast, seconds):
    dev = Device(cert, key)
    ann = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ann.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("0.0.0.0", 7451))
    lst.listen(64)
    end, last_ann, acked = time.time() + float(seconds), 0.0, 0
    while time.time() < end:
        if time.time() > last_ann + 0.05:  # "I lost my ring", again and again
            ann.sendto(dev.seal("I_AM_ON_THE_NETWORK", {"epoch": 999, "indices": [0]}),
                       (bcast, 7451))
            last_ann = time.time()
        if not select.select([lst], [], [], 0.02)[0]:
            continue
        c, _ = lst.accept()
        try:
            f = read_frame(c, 2)
            m = open_signed(f) if f else {}
            if m.get("type") == "CLIENT_RING_KEYS":
                c.sendall(frame(dev.seal("CLIENT_RING_ACK", {"epoch": m["body"]["epoch"]},
                                         to=m["from"], id=m["id"], with_cert=False)))
                acked += 1
        except OSError:
            pass
        c.close()
    log("confirmed", acked, "deliveries")


def cmd_queries(cert, key, bcast, count):
    dev = Device(cert, key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    for i in range(int(count)):
        s.sendto(dev.seal("IS_THERE_CONTROLLER", {"challenge": b64_16()}, with_cert=(i == 0)),
                 (bcast, 7450))
        if i == 0:
            time.sleep(0.2)  # its certificate known first: the rest carry the fingerprint
    log("sent", count, "queries")


def cmd_keys(cert, key, ctrl_cert, addr, seconds):
    dev = Device(cert, key)
    with open(ctrl_cert, "rb") as f:
        ctrl = x509.load_pem_x509_certificate(f.read())
    der = ctrl.public_bytes(serialization.Encoding.DER)
    name = ctrl.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    wrapped = [wrap_to(der, os.urandom(32)) for _ in range(32)]
    end, sent = time.time() + float(seconds), 0
    while time.time() < end:
        try:
            with socket.create_connection((addr, 7451), timeout=1) as c:
                # The first carries the certificate, and so one key only, to stay in a frame.
                keys = wrapped[:1] if sent == 0 else wrapped
                c.sendall(frame(dev.seal("CLIENT_KEYS", {"epoch": 1, "keys": keys}, to=name,
                                         id=os.urandom(8).hex(), with_cert=sent == 0)))
                sent += 1
        except OSError:
            time.sleep(0.01)
    log("sent", sent, "CLIENT_KEYS of 32 keys")


def cmd_holdlinks(cert, key, addr, srcs, seconds):
    dev = Device(cert, key)
    ann = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ann.bind(("0.0.0.0", 7451))
    target, ring, until = None, None, time.time() + 5
    while target is None and time.time() < until:
        if select.select([ann], [], [], 0.2)[0]:
            data, src = ann.recvfrom(65536)
            m = open_signed(data)
            if src[0] == addr and m["body"]:
                target, ring = m["from"], m["body"]
    ann.close()
    if target is None:
        sys.exit("never heard " + addr)
    live = {a: [] for a in srcs.split(",")}
    end, opened, first = time.time() + float(seconds), 0, True
    while time.time() < end:
        for a in live:
            live[a] = still_open(live[a])
            while len(live[a]) < 8:
                c = socket.socket()
                c.bind((a, 0))
                c.settimeout(0.5)
                try:
                    c.connect((addr, 7451))
                    body = {"epoch": ring["epoch"], "indices": ring["indices"],
                            "challenge": b64_16()}
                    c.sendall(frame(dev.seal("CLIENT_START_SESSION", body, to=target,
                                             id=os.urandom(8).hex(), with_cert=first)))
                    first = False
                    live[a].append(c)
                    opened += 1
                except OSError:
                    c.close()
                    break
        time.sleep(0.005)
    log("opened", opened, "links")


def cmd_ahead(cert, key, bcast, seconds, ahead, whom):
    dev = Device(cert, key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", 7451))
    end, beat, top, said = time.time() + float(seconds), 0.0, 0, set()
    while time.time() < end:
        if select.select([s], [], [], 0.05)[0]:
            m = open_signed(s.recvfrom(65536)[0])
            if m.get("type") == "I_AM_ON_THE_NETWORK" and m.get("from") == whom:
                top = m["body"].get("epoch", 0)
        if top and time.time() >= beat:
            s.sendto(dev.seal("I_AM_ON_THE_NETWORK",
                              {"epoch": top + int(ahead), "indices": [0]}), (bcast, 7451))
            said.add(top + int(ahead))
            beat = time.time() + 0.3
    log("announced", len(said), "epochs, the last", max(said) if said else 0)


def cmd_sessions(cert, key, addr, peer, seconds):
    dev = Device(cert, key)
    end, sent = time.time() + float(seconds), 0
    while time.time() < end:
        body = {"epoch": 77, "indices": [1], "challenge": b64_16()}
        try:
            with socket.create_connection((addr, 7451), timeout=1) as c:
                c.sendall(frame(dev.seal("CLIENT_START_SESSION", body, to=peer,
                                         id=os.urandom(8).hex(), with_cert=sent == 0)))
                sent += 1
        except OSError:
            time.sleep(0.01)
    log("sent", sent, "session starts")


PINGD_PORT = 7452


class FrameReader:
    """Whole frames from a stream socket read piece by piece."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def feed(self):
        """Read what is there; the whole envelopes received, or None once the other end closed."""
        try:
            d = self.sock.recv(65536)
        except OSError:
            return None
        if not d:
            return None
        self.buf += d
        out = []
        while len(self.buf) >= 4 and len(self.buf) >= 4 + struct.unpack("!I", self.buf[:4])[0]:
            n = struct.unpack("!I", self.buf[:4])[0]
            out.append(self.buf[4:4 + n])
            self.buf = self.buf[4 + n:]
        return out


def cmd_pingd(cert, key, bcast, seconds, mode, ctrl=None, ctrl_addr=None, count="0"):
    dev = Device(cert, key)
    if mode not in ("badmouth", "goodmouth", "stuff"):
        sys.exit("mode: badmouth, goodmouth or stuff")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    udp.bind(("0.0.0.0", PINGD_PORT))
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("0.0.0.0", PINGD_PORT))
    lst.listen(64)
    links = {}  # socket -> FrameReader
    heard = set()  # devices heard saying HELLO
    qv, hello, stuffed, next_stuff = 0, 0.0, 0, 0.0
    counts = {"pong": 0, "report": 0, "alive": 0}
    end = time.time() + float(seconds)
    while time.time() < end:
        if time.time() >= hello:
            udp.sendto(dev.seal("PINGD_HELLO", {"crl": 0, "qv": qv}), (bcast, PINGD_PORT))
            hello = time.time() + 0.3
        if mode == "stuff" and stuffed < int(count) and time.time() >= next_stuff:
            others = sorted(heard - {dev.name, ctrl})
            if others:
                body = {"target": others[stuffed % len(others)], "alive": False}
                try:
                    with socket.create_connection((ctrl_addr, PINGD_PORT), timeout=1) as c:
                        c.sendall(frame(dev.seal("PINGD_REPORT", body, to=ctrl,
                                                 id=os.urandom(8).hex())))
                        time.sleep(0.02)  # read before closed
                    stuffed += 1
                except OSError as e:
                    log("report to", ctrl, "failed:", e)
            next_stuff = time.time() + 0.1
        ready = select.select([udp, lst] + list(links), [], [], 0.05)[0]
        if udp in ready:
            data, _ = udp.recvfrom(65536)
            try:
                m = open_signed(data)
            except (ValueError, KeyError):
                m = {}
            t, body = m.get("type"), m.get("body") or {}
            if t == "PINGD_HELLO":
                heard.add(m.get("from"))
            elif t == "PINGD_QUARANTINE":
                qv = max(qv, int(body.get("version", 0)))
            elif t == "PINGD_SUSPECT" and body.get("target") == dev.name:
                udp.sendto(dev.seal("PINGD_ALIVE", {"suspect_id": body["id"]}),
                           (bcast, PINGD_PORT))
                counts["alive"] += 1
        if lst in ready:
            c, _ = lst.accept()
            links[c] = FrameReader(c)
        for c in [c for c in ready if c in links]:
            got = links[c].feed()
            if got is None:
                c.close()
                del links[c]
                continue
            for wire in got:
                try:
                    m = open_signed(wire)
                except (ValueError, KeyError):
                    continue
                t, peer, did = m.get("type"), m.get("from"), m.get("id")
                try:
                    if t == "PINGD_PING":
                        c.sendall(frame(dev.seal("PINGD_PONG", {}, to=peer, id=did)))
                        counts["pong"] += 1
                    elif t == "PINGD_PING_REQ":
                        target = m["body"]["target"]
                        answer = {"target": target, "alive": mode != "badmouth"}
                        c.sendall(frame(dev.seal("PINGD_REPORT", answer, to=peer, id=did)))
                        counts["report"] += 1
                        log("asked about", target, "by", peer, "-> said alive:",
                            answer["alive"])
                except OSError:
                    pass  # the other end gave up waiting: its link is gone
    log("answered", counts["pong"], "pings,", counts["report"], "requests;", counts["alive"],
        "refutations;", stuffed, "unsolicited reports")


def cmd_pingdforge(cert, key, seconds, *targets):
    dev = Device(cert, key)
    peers = [t.split("@", 1) for t in targets]
    end, n, kinds = time.time() + float(seconds), 0, {"forged": 0, "replayed": 0}
    while time.time() < end:
        for name, addr in peers:
            # A probe, which any device may send another, and which keeps the link open until
            # its answer is out. Both go in one write, so the bad one is read with it: on a link
            # that has carried our valid message, the failure can only be ours.
            valid = dev.seal("PINGD_PING", {}, to=name, id=os.urandom(8).hex(), with_cert=False)
            if n % 2 == 0:  # a fresh message of its own, one byte of its signature changed
                o = json.loads(dev.seal("PINGD_PING", {}, to=name, id=os.urandom(8).hex(),
                                        with_cert=False))
                sig = bytearray(base64.b64decode(o["sig"]))
                sig[len(sig) // 2] ^= 0x5A
                o["sig"] = base64.b64encode(bytes(sig)).decode()
                bad, kind = json.dumps(o, separators=(",", ":")).encode(), "forged"
            else:
                bad, kind = valid, "replayed"
            try:
                with socket.create_connection((addr, PINGD_PORT), timeout=1) as c:
                    c.sendall(frame(valid) + frame(bad))
                    read_frame(c, 0.5)
                kinds[kind] += 1
            except OSError:
                pass
        n += 1
        time.sleep(0.25)
    log("sent", kinds["forged"], "forged and", kinds["replayed"], "replayed envelopes")

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
