"""One control request to a daemon's Unix socket (SPEC 5): a JSON line out, its reply line back.

As a program, `ctl.py SOCKET JSON` prints the reply: it reaches any daemon and any verb, including
those iotsecctl does not offer, such as dictd's store and lookup."""
import socket
import sys


def call(path, request, timeout=5):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        try:
            s.sendall(request.encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at once ("permission denied", "too many connections"): read why
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode()


if __name__ == "__main__":
    sys.stdout.write(call(sys.argv[1], sys.argv[2]))
