"""The capture every Python verifier here reads (format: README.md)."""
import base64
import json
import sys


def read_capture():
    """`(secret, headers with lower-case names, body bytes)` of the capture file named by the first
    argument, or of stdin when there is none. Raises on a malformed capture."""
    raw = open(sys.argv[1], "rb").read() if len(sys.argv) > 1 else sys.stdin.buffer.read()
    capture = json.loads(raw)
    headers = {k.lower(): v for k, v in capture["headers"].items()}
    return capture["secret"], headers, base64.b64decode(capture["body_b64"])
