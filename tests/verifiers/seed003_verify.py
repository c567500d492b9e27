#!/usr/bin/env python3
"""Verify `X-ServiceHook-Signature` with the Python snippet of the 1UPVISION ServiceHook
integration guide (the ServiceHook contract, docs/delivery-worker.md), as printed.

Usage: seed003_verify.py [capture.json]   (stdin when no file)
Capture: {"secret": "...", "headers": {...lower-case names...}, "body_b64": "..."}
Exit 0 only if the guide's computed `signature` equals the header.

The guide's snippet assigns placeholders (`SECRET_KEY = "WEBHOOK SECRET"`,
`request_body = 'REQUEST BODY IS HERE'`) and then HMACs a variable named `request_data`
(a typo in the guide for `request_body`). We bind those three names to the captured secret and body
and run the guide's computation verbatim; its comparison rule is "should be equal".
"""
import hmac
import sys

from capture import read_capture


def seed003_signature(captured_secret: str, captured_body: str) -> str:
    # ---- the ServiceHook guide's snippet, as printed (placeholders bound to the capture) ----
    # Python 3.6+
    import json  # noqa: F401
    import hmac
    from hashlib import sha256
    # we will provide this secret key, unique for each organization. Keep this secret
    SECRET_KEY = captured_secret  # guide: "WEBHOOK SECRET"
    request_body = captured_body  # guide: 'REQUEST BODY IS HERE'
    request_data = request_body  # the guide's snippet reads `request_data`
    signature = hmac.new(
    key=SECRET_KEY.encode("utf-8"),
    msg=request_data.encode("utf-8"),
    digestmod=sha256,
    ).hexdigest()
    # ---- end of the ServiceHook guide's snippet ----
    return signature


def main() -> int:
    try:
        captured_secret, headers, body_bytes = read_capture()
        received = headers["x-servicehook-signature"]
    except Exception as e:  # noqa: BLE001
        print(f"bad capture: {e}", file=sys.stderr)
        return 2

    try:
        signature = seed003_signature(captured_secret, body_bytes.decode("utf-8"))
    except UnicodeDecodeError as e:
        print(f"invalid: body is not UTF-8: {e}", file=sys.stderr)
        return 1

    # "Then above calculated `signature` ... should be equal to the `X-ServiceHook-Signature`"
    if hmac.compare_digest(signature, received):
        print("valid")
        return 0
    print(f"invalid: expected {signature}, got {received}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
