#!/usr/bin/env python3
"""Verify a captured delivery with the official `standardwebhooks` package.

Usage: standardwebhooks_verify.py [capture.json]   (stdin when no file)
Capture: {"secret": "...", "headers": {...lower-case names...}, "body_b64": "..."}
Exit 0 only if `Webhook(secret).verify(body, headers)` accepts it.
"""
import sys

from capture import read_capture

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as e:  # pragma: no cover
    print(f"standardwebhooks is not installed: {e}", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    try:
        secret, headers, body = read_capture()
    except Exception as e:  # noqa: BLE001
        print(f"bad capture: {e}", file=sys.stderr)
        return 2
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError as e:
        print(f"invalid: {e}", file=sys.stderr)
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
