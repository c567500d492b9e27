// Receiver-side verification code for the three signature schemes every delivery carries
// (docs/delivery-worker.md, "Request headers" and "Verifying a delivery"; shared/src/signing/).
// The browser suite (tests/browser) runs every snippet, as shown, against a real delivery.
//
// Keys: a `whsec_…` secret's Standard Webhooks key is the base64-decoded rest after `whsec_`; the
// two hex schemes HMAC with the whole secret string's UTF-8 bytes. A secret without the prefix is
// used as UTF-8 bytes by all three.

export function schemes(webhookId) {
  const id = webhookId;
  return [
    {
      key: 'standard',
      name: 'Standard Webhooks (recommended)',
      headers: [
        ['webhook-id', 'the delivery id, stable across retries (dedupe on it)'],
        ['webhook-timestamp', 'Unix seconds of this attempt (refuse old ones)'],
        ['webhook-signature', 'v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}"> — one per valid secret, space-separated (two during a rotation)'],
      ],
      python: `# Standard Webhooks for webhook ${id}. Python 3, standard library only.
# (Or the official package: pip install standardwebhooks;
#  standardwebhooks.webhooks.Webhook(secret).verify(raw_body, headers) raises when invalid.)
import base64, binascii, hashlib, hmac, time

def verify_standard_webhooks(secret: str, headers: dict, raw_body: bytes, tolerance: int = 300) -> bool:
    """secret: the webhook's secret; headers: lower-case names; raw_body: the exact bytes received."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False  # missing, too old or in the future: refuse (a replay)
    key = secret.encode()
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_"):], validate=True)
        except binascii.Error:
            pass  # not base64 after the prefix: the whole secret's bytes
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # One "v1,<signature>" per valid secret, space-separated (two during a rotation's grace period).
    return any(
        hmac.compare_digest(expected, sig[3:].encode())
        for sig in headers.get("webhook-signature", "").split(" ")
        if sig.startswith("v1,")
    )
`,
      node: `// Standard Webhooks for webhook ${id}. Node 18+, no dependencies.
// rawBody: a Buffer of the exact bytes received (Express: express.raw({ type: 'application/json' })).
const crypto = require('node:crypto')

function verifyStandardWebhooks(secret, headers, rawBody, toleranceSeconds = 300) {
  const id = headers['webhook-id']
  const timestamp = headers['webhook-timestamp'] // headers: lower-case names, as Node gives them
  if (!id || !/^\\d+$/.test(timestamp || '')) return false
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false // a replay
  let key = Buffer.from(secret, 'utf8')
  const rest = secret.startsWith('whsec_') ? secret.slice(6) : null
  if (rest !== null && /^[A-Za-z0-9+/]*={0,2}$/.test(rest) && rest.length % 4 === 0) {
    key = Buffer.from(rest, 'base64')
  }
  const expected = crypto.createHmac('sha256', key).update(\`\${id}.\${timestamp}.\`).update(rawBody).digest()
  // One "v1,<signature>" per valid secret, space-separated (two during a rotation's grace period).
  return String(headers['webhook-signature'] || '').split(' ').some((sig) => {
    if (!sig.startsWith('v1,')) return false
    const got = Buffer.from(sig.slice(3), 'base64')
    return got.length === expected.length && crypto.timingSafeEqual(got, expected)
  })
}
`,
    },
    {
      key: 'hook',
      name: 'X-Hook-Signature (OpenWork webhook contract)',
      headers: [
        ['X-Hook-Signature', 'sha256=<hex HMAC-SHA256 of the body> (current secret)'],
        ['X-ServiceHook-Event', 'the event type, e.g. telephony:created'],
      ],
      python: `# X-Hook-Signature for webhook ${id}. Python 3, standard library only.
import hashlib, hmac

def verify_hook_signature(secret: str, headers: dict, raw_body: bytes) -> bool:
    """HMAC-SHA256 of the exact bytes received, keyed with the whole secret string."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), headers.get("x-hook-signature", "").encode())
`,
      node: `// X-Hook-Signature for webhook ${id}. Node 18+, no dependencies.
// rawBody: a Buffer of the exact bytes received (not JSON.stringify(req.body)).
const crypto = require('node:crypto')

function verifyHookSignature(secret, headers, rawBody) {
  const expected = Buffer.from('sha256=' + crypto.createHmac('sha256', secret).update(rawBody).digest('hex'))
  const got = Buffer.from(String(headers['x-hook-signature'] || ''))
  return got.length === expected.length && crypto.timingSafeEqual(got, expected)
}
`,
    },
    {
      key: 'servicehook',
      name: 'X-ServiceHook-Signature (ServiceHook contract)',
      headers: [
        ['X-ServiceHook-Signature', '<hex HMAC-SHA256 of the body> (current secret)'],
        ['X-ServiceHook-Timestamp', "this attempt's time, RFC 3339 UTC (not signed: compare it to your clock)"],
        ['X-ServiceHook-UUID', `the webhook id (${id})`],
        ['X-ServiceHook-Event', 'the event type'],
      ],
      python: `# X-ServiceHook-Signature for webhook ${id}. Python 3, standard library only.
import hashlib, hmac

def verify_servicehook_signature(secret: str, headers: dict, raw_body: bytes) -> bool:
    """HMAC-SHA256 of the exact bytes received, keyed with the whole secret string."""
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), headers.get("x-servicehook-signature", "").encode())
`,
      node: `// X-ServiceHook-Signature for webhook ${id}. Node 18+, no dependencies.
// rawBody: a Buffer of the exact bytes received (not JSON.stringify(req.body)).
const crypto = require('node:crypto')

function verifyServiceHookSignature(secret, headers, rawBody) {
  const expected = Buffer.from(crypto.createHmac('sha256', secret).update(rawBody).digest('hex'))
  const got = Buffer.from(String(headers['x-servicehook-signature'] || ''))
  return got.length === expected.length && crypto.timingSafeEqual(got, expected)
}
`,
    },
  ];
}
