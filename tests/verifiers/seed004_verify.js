#!/usr/bin/env node
// Verify `X-Hook-Signature` with the Node `verifyWebhookSignature` of the OpenWork webhook guide
// (the OpenWork webhook contract, docs/delivery-worker.md), as printed, given `JSON.parse(body)`
// as its payload (as the guide's Express example passes `req.body`).
//
// Usage: node seed004_verify.js [capture.json]   (stdin when no file)
// Capture: {"secret": "...", "headers": {...lower-case names...}, "body_b64": "..."}
// Exit 0 only if the guide's function returns true.

const fs = require('fs')

// ---- the OpenWork guide's function, as printed ----
const crypto = require('crypto')

function verifyWebhookSignature(payload, signature, secret) {
  const hmac = crypto.createHmac('sha256', secret)
  hmac.update(JSON.stringify(payload))
  const expected = `sha256=${hmac.digest('hex')}`

  return crypto.timingSafeEqual(
    Buffer.from(signature),
    Buffer.from(expected)
  )
}
// ---- end of the OpenWork guide's function ----

function main() {
  let capture, body, signature
  try {
    const raw = process.argv[2] ? fs.readFileSync(process.argv[2]) : fs.readFileSync(0)
    capture = JSON.parse(raw.toString('utf8'))
    body = Buffer.from(capture.body_b64, 'base64').toString('utf8')
    const headers = Object.fromEntries(Object.entries(capture.headers).map(([k, v]) => [k.toLowerCase(), v]))
    signature = headers['x-hook-signature']
    if (typeof signature !== 'string') throw new Error('no x-hook-signature header')
  } catch (e) {
    console.error(`bad capture: ${e.message}`)
    return 2
  }
  let valid = false
  try {
    // timingSafeEqual throws when the lengths differ: that is "invalid".
    valid = verifyWebhookSignature(JSON.parse(body), signature, capture.secret)
  } catch (e) {
    console.error(`invalid: ${e.message}`)
    return 1
  }
  if (!valid) {
    console.error('invalid: signature mismatch')
    return 1
  }
  console.log('valid')
  return 0
}

process.exit(main())
