"""Independent reference vectors for the hex signature schemes
(`X-ServiceHook-Signature` of the ServiceHook contract, `X-Hook-Signature` of the OpenWork webhook
contract; docs/delivery-worker.md).

Run: python3 shared/testdata/make_signing_vectors.py > shared/testdata/signing_vectors.json
Uses only the Python standard library's hmac, exactly as those guides' own verifier code does.
"""
import hashlib
import hmac
import json

CASES = [
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", '{"test": 2432232314}'),
    ("optional-hmac-secret", '{"Payload":"telephony","orgId":"org-1"}'),
    ("WEBHOOK SECRET", '{"payload":"user-presence","items":[{"id":"abc123","status":"active"}]}'),
    ("ünïcödé-secret-✓", '{"name":"Zoë","emoji":"📞"}'),
]

out = []
for secret, body in CASES:
    digest = hmac.new(secret.encode("utf-8"), body.encode("utf-8"), hashlib.sha256).hexdigest()
    out.append({
        "secret": secret,
        "body": body,
        "x_servicehook_signature": digest,
        "x_hook_signature": "sha256=" + digest,
    })
print(json.dumps(out, indent=2, ensure_ascii=False))
