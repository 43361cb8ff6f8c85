"""The clear header of sealed readings (libiotsec/reading.h) as a client of the broker sees them.

Input: lines "TOPIC HEX" (mosquitto_sub -F '%t %x'); lines that are not (mosquitto_sub's -d
output) are skipped. Output, a line each: TOPIC DEVICE KIND FLAGS EPOCH SEQ TIME_MS STREAM_HEX,
or TOPIC junk LENGTH for a payload that is no sealed reading.
"""
import struct
import sys

FIXED = 4 + 16 + 4 + 8 + 8 + 12
TAG = 16

for line in sys.stdin:
    parts = line.split()
    if len(parts) != 2 or not parts[0].startswith("iotsec/"):
        continue
    topic, text = parts
    try:
        b = bytes.fromhex(text)
    except ValueError:
        continue
    n = b[3] if len(b) > 3 else 0
    if len(b) < FIXED + n + 1 + TAG or b[0] != 1 or not 1 <= n <= 63:
        print(topic, "junk", len(b))
        continue
    device = b[4:4 + n].decode("ascii", "replace")
    o = 4 + n
    stream = b[o:o + 16].hex()
    epoch, seq, time_ms = struct.unpack(">IQq", b[o + 16:o + 36])
    print(topic, device, b[1], b[2], epoch, seq, time_ms, stream)
