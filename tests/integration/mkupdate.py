#!/usr/bin/env python3
"""Builds a pdm.v1.ModelUpdate without pdm-agent's code (test helper, not product).

    mkupdate.py --key PRIV.pem --pub PUB.pem --model FILE [--asset A] --version N
                [--request-id R] -o OUT

The text to sign follows proto/pdm/v1/pdm.proto (ModelUpdate) and is signed by the openssl
command line; the protobuf is encoded by hand here. So an update this script makes and the
agent accepts shows the contract is implemented as written, not only that pdmctl sign-model
and the agent agree with each other. It signs whatever model it is given, valid or not: the
tests use it for models pdmctl sign-model refuses to sign.
"""
import argparse
import hashlib
import subprocess
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--pub", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--asset", default="")
    ap.add_argument("--version", type=int, required=True)
    ap.add_argument("--request-id", default="mkupdate")
    ap.add_argument("-o", required=True)
    a = ap.parse_args()

    model = open(a.model, "rb").read()
    text = "pdm-model-update-v1\nasset=%s\nversion=%d\nsha256=%s\n" % (
        a.asset, a.version, hashlib.sha256(model).hexdigest())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key], input=text.encode(),
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", a.pub, "-outform", "DER"],
                         capture_output=True, check=True).stdout
    key_id = hashlib.sha256(der).hexdigest()[:16]

    msg = field_bytes(1, a.request_id.encode())
    if a.asset:
        msg += field_bytes(2, a.asset.encode())
    msg += field_bytes(3, model)
    msg += varint(4 << 3 | 0) + varint(a.version)
    msg += field_bytes(5, sig)
    msg += field_bytes(6, key_id.encode())
    open(a.o, "wb").write(msg)
    print("key_id %s, %d bytes" % (key_id, len(msg)), file=sys.stderr)


if __name__ == "__main__":
    main()
