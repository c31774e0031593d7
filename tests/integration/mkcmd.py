#!/usr/bin/env python3
"""Encodes a backend command by hand, the way a backend without pdm-agent's code would.

usage: mkcmd.py OUT FIELD=VALUE ...   (FIELD: the field number; VALUE: a string, or u:N for a
varint). Example: mkcmd.py ack.bin 1=req-1 2=compressor-1-maint-42 3=alice
Only what the commands of pdm.proto use: strings (wire type 2) and uint32 (wire type 0)."""
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    msg = bytearray()
    for arg in sys.argv[2:]:
        field, _, value = arg.partition("=")
        num = int(field)
        if value.startswith("u:"):
            msg += varint(num << 3 | 0) + varint(int(value[2:]))
        else:
            data = value.encode()
            msg += varint(num << 3 | 2) + varint(len(data)) + data
    with open(sys.argv[1], "wb") as f:
        f.write(msg)


main()
