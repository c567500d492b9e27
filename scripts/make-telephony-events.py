#!/usr/bin/env python3
"""Generates the telephony-ingest sample events (API Gateway HTTP API, payload v2; one through a Lambda
function URL, the same payload version) in events/.

    python3 scripts/make-telephony-events.py            # events/telephony-*.json from the fixtures
    python3 scripts/make-telephony-events.py --check    # fail if events/ is stale
    python3 scripts/make-telephony-events.py --extract-seed /path/to/001_*.txt
                                                        # (re)write tests/fixtures/seed001/*.json

The fixtures tests/fixtures/seed001/{updated,created,deleted}.json are the three outbound bodies
of the captured Webex telephony webhook (the telephony contract, docs/telephony-ingest.md; the
capture is out of order and misses a comma between two array elements; the fixtures are the
repaired, valid JSON). The Webex envelope Webex POSTs to us IS each body's `items`: the events
carry it as compact JSON, signed with X-Spark-Signature = hex HMAC-SHA1 of those exact bytes under
the documented test secret `local-webex-secret`.
"""
import argparse
import hashlib
import hmac
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "seed001"
EVENTS = ROOT / "events"
SECRET = b"local-webex-secret"
STAGES = ["updated", "created", "deleted"]  # the telephony capture's order
# Fixed values so the files are reproducible byte for byte.
REQUEST_TIME_EPOCH = {"updated": 1755197583419, "created": 1755197582738, "deleted": 1755197584091}


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sign(body: bytes) -> str:
    return hmac.new(SECRET, body, hashlib.sha1).hexdigest()


def api_gateway_event(name, body: str, signature, epoch_ms):
    headers = {
        "accept": "*/*",
        "content-length": str(len(body.encode("utf-8"))),
        "content-type": "application/json",
        "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "trackingid": f"WEBHOOK_{name}_0001",
        "user-agent": "Jersey/2.40 (HttpUrlConnection 17.0.12)",
        "x-forwarded-for": "198.51.100.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if signature is not None:
        headers["x-spark-signature"] = signature
    return {
        "version": "2.0",
        "routeKey": "POST /webex/telephony",
        "rawPath": "/webex/telephony",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": "POST",
                "path": "/webex/telephony",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.10",
                "userAgent": headers["user-agent"],
            },
            "requestId": f"req-telephony-{name}",
            "routeKey": "POST /webex/telephony",
            "stage": "$default",
            "time": "14/Aug/2025:18:53:03 +0000",
            "timeEpoch": epoch_ms,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def function_url_event(name, body: str, signature, epoch_ms):
    """The same POST as it reaches the function through a Lambda function URL (template parameter
    IngestFrontDoor=FunctionUrl): payload 2.0 like the HTTP API's, but routeKey `$default`, the
    function URL's host, and accountId `anonymous` (AuthType NONE)."""
    event = api_gateway_event(name, body, signature, epoch_ms)
    host = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
    headers = {k: v for k, v in event["headers"].items() if k != "host"}
    headers.update({
        "host": host,
        "x-amzn-tls-cipher-suite": "TLS_AES_128_GCM_SHA256",
        "x-amzn-tls-version": "TLSv1.3",
        "x-amzn-trace-id": "Root=1-689e30ff-0123456789abcdef01234567",
    })
    event["headers"] = dict(sorted(headers.items()))
    event["routeKey"] = "$default"
    ctx = event["requestContext"]
    ctx.update({
        "accountId": "anonymous",
        "apiId": host.split(".")[0],
        "domainName": host,
        "domainPrefix": host.split(".")[0],
        "requestId": f"req-telephony-{name}",
        "routeKey": "$default",
    })
    return event


def build():
    out = {}
    for stage in STAGES:
        fixture = json.loads((FIXTURES / f"{stage}.json").read_text(encoding="utf-8"))
        body = compact(fixture["items"])
        out[f"telephony-{stage}.json"] = api_gateway_event(stage, body, sign(body.encode("utf-8")), REQUEST_TIME_EPOCH[stage])
    created = json.loads((FIXTURES / "created.json").read_text(encoding="utf-8"))["items"]
    body = compact(created)
    out["telephony-bad-signature.json"] = api_gateway_event("bad-signature", body, "0" * 40, REQUEST_TIME_EPOCH["created"])
    out["telephony-function-url.json"] = function_url_event("function-url", body, sign(body.encode("utf-8")), REQUEST_TIME_EPOCH["created"])
    # Valid signature over a body that is not JSON: the function answers 400 (not 401).
    broken = body[: len(body) // 2]
    out["telephony-malformed.json"] = api_gateway_event("malformed", broken, sign(broken.encode("utf-8")), REQUEST_TIME_EPOCH["created"])
    return {name: json.dumps(ev, indent=2, ensure_ascii=False) + "\n" for name, ev in out.items()}


def extract_seed(seed_path: pathlib.Path):
    text = seed_path.read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    # The capture misses a comma between two array elements: `}\n  {` at the top level.
    repaired = re.sub(r"\}\n  \{", "},\n  {", block)
    captured = json.loads(repaired)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "capture.json").write_text(json.dumps(captured, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for entry in captured:
        stage = entry["body"]["items"]["event"]
        (FIXTURES / f"{stage}.json").write_text(json.dumps(entry["body"], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(captured)} fixtures to {FIXTURES.relative_to(ROOT)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if events/ differs from what would be generated")
    ap.add_argument("--extract-seed", type=pathlib.Path, help="path of the captured Webex telephony webhook document (../shared/seeds/001_*.txt) to extract the fixtures from")
    args = ap.parse_args()
    if args.extract_seed:
        extract_seed(args.extract_seed)
    files = build()
    stale = [n for n, t in files.items() if not (EVENTS / n).exists() or (EVENTS / n).read_text(encoding="utf-8") != t]
    if args.check:
        if stale:
            print("stale or missing: " + ", ".join(stale) + " (run scripts/make-telephony-events.py)", file=sys.stderr)
            sys.exit(1)
        print("events/telephony-*.json are up to date")
        return
    EVENTS.mkdir(exist_ok=True)
    for name, text in files.items():
        (EVENTS / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} events to events/ (secret: {SECRET.decode()})")


if __name__ == "__main__":
    main()
