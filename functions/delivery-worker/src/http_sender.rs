//! The reqwest `HttpSender`: no redirects, no proxies, the SSRF-guarded resolver, a capped read.

use std::error::Error as _;
use std::sync::Arc;

use async_trait::async_trait;
use relay_shared::delivery::ErrorClass;
use relay_shared::ports::{HttpSender, OutboundRequest, OutboundResponse, SendError};
use relay_shared::targets::TargetPolicy;

use crate::ssrf::{GuardedResolver, Lookup, ResolveFailure, SystemLookup};

/// Built once per cold start and shared (one connection pool).
pub struct ReqwestSender {
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
    max_response_bytes: usize,
}

impl ReqwestSender {
    pub fn new(policy: TargetPolicy, max_response_bytes: usize) -> Result<Self, reqwest::Error> {
        Self::with_lookup(policy, max_response_bytes, Arc::new(SystemLookup))
    }

    /// With a custom name lookup (tests).
    pub fn with_lookup(
        policy: TargetPolicy,
        max_response_bytes: usize,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Self, reqwest::Error> {
        if policy.allow_private {
            tracing::warn!(
                "ALLOW_PRIVATE_TARGETS is on: the SSRF address check is DISABLED (except for cloud metadata endpoints), \
                 deliveries may reach loopback and private addresses. Never use this setting in a deployed environment."
            );
        }
        if policy.allow_http {
            tracing::warn!("ALLOW_HTTP_TARGETS is on: deliveries may use plain http");
        }
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::new(policy.clone(), lookup))
            .user_agent(relay_shared::signing::USER_AGENT)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            policy,
            max_response_bytes,
        })
    }
}

fn send_error(class: ErrorClass, message: impl Into<String>, permanent: bool) -> SendError {
    SendError {
        class,
        message: message.into(),
        permanent,
    }
}

/// Maps a reqwest error onto the attempt log's classes, looking through its source chain.
fn classify(err: &reqwest::Error) -> SendError {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(s) = source {
        if let Some(rf) = s.downcast_ref::<ResolveFailure>() {
            return match rf {
                ResolveFailure::Blocked { .. } => {
                    send_error(ErrorClass::SsrfBlocked, rf.to_string(), true)
                }
                ResolveFailure::Dns { .. } => {
                    send_error(ErrorClass::Dns, redact_addresses(&rf.to_string()), false)
                }
            };
        }
        chain.push(s.to_string());
        source = s.source();
    }
    // The tenant sees this text: no address a name resolved to (libraries' messages could carry
    // one); the unredacted one goes to the server log.
    let raw = format!("{err}: {}", chain.join(": "));
    let text = redact_addresses(&raw);
    if text != raw {
        tracing::info!(detail = %raw, "delivery failed (addresses redacted in the attempt log)");
    }
    if err.is_timeout() {
        return send_error(ErrorClass::Timeout, text, false);
    }
    // Match on the causes only: the top-level message contains the URL, which could contain anything.
    let lower = chain.join(": ").to_ascii_lowercase();
    // rustls errors (certificate, alert, handshake) as their Display texts.
    const TLS_MARKERS: [&str; 10] = [
        "certificate",
        "tls",
        "handshake",
        "rustls",
        "corrupt message",
        "fatal alert",
        "peer is incompatible",
        "peer misbehaved",
        "inappropriate message",
        "unexpected message",
    ];
    if TLS_MARKERS.iter().any(|m| lower.contains(m)) {
        return send_error(ErrorClass::Tls, text, false);
    }
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        return send_error(ErrorClass::Dns, text, false);
    }
    // The connection failed after it was made (reset, closed mid-request by a restarting
    // receiver): a connection-level failure like a refused connect.
    const DROPPED_MARKERS: [&str; 6] = [
        "connection closed",
        "connection reset",
        "connection aborted",
        "broken pipe",
        "incomplete message",
        "unexpected eof",
    ];
    if err.is_connect() || DROPPED_MARKERS.iter().any(|m| lower.contains(m)) {
        return send_error(ErrorClass::Connect, text, false);
    }
    if err.is_redirect() {
        return send_error(ErrorClass::Redirect, text, false);
    }
    send_error(ErrorClass::Other, text, false)
}

#[async_trait]
impl HttpSender for ReqwestSender {
    async fn post(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError> {
        // Scheme and literal-IP checks (names are checked by the resolver at connect time).
        let url = self.policy.check_url(&request.url).map_err(|r| {
            tracing::warn!(detail = %r, "delivery target refused by the target policy");
            send_error(r.reason.error_class(), r.tenant_message(), true)
        })?;
        let mut builder = self.client.post(url).timeout(request.timeout);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        let body = bytes_of(&request.body);
        let fut = async {
            let mut response = builder.body(body).send().await.map_err(|e| classify(&e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // Read at most `max_response_bytes`, then drop the connection.
            let mut buf: Vec<u8> = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = self.max_response_bytes.saturating_sub(buf.len());
                        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if buf.len() >= self.max_response_bytes {
                            break;
                        }
                    }
                    Ok(None) => break,
                    // The status is what counts; a body cut short (or slow) is not a failure.
                    Err(e) => {
                        tracing::debug!(error = %e, "response body read ended early");
                        break;
                    }
                }
            }
            Ok(OutboundResponse {
                status,
                retry_after,
                body_snippet: String::from_utf8_lossy(&buf).into_owned(),
            })
        };
        // Belt and braces: reqwest's own timeout covers the whole exchange; this one too.
        match tokio::time::timeout(request.timeout + std::time::Duration::from_millis(250), fut)
            .await
        {
            Ok(r) => r,
            Err(_) => Err(send_error(
                ErrorClass::Timeout,
                format!("no complete response within {:?}", request.timeout),
                false,
            )),
        }
    }
}

/// `text` with every IP address (or `address:port`) in it replaced by `<address>`, so that a
/// transport error shown to the tenant cannot disclose what a name resolved to.
pub fn redact_addresses(text: &str) -> String {
    let is_addr = |t: &str| {
        t.parse::<std::net::IpAddr>().is_ok() || t.parse::<std::net::SocketAddr>().is_ok()
    };
    let addr_char = |c: char| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']' | '%');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(addr_char) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let len = run.find(|c: char| !addr_char(c)).unwrap_or(run.len());
        let token = &run[..len];
        // A sentence's trailing `.`/`:` is not part of the address.
        let trimmed = token.trim_end_matches(['.', ':']);
        if is_addr(trimmed) || is_addr(trimmed.trim_start_matches('[').trim_end_matches(']')) {
            out.push_str("<address>");
            out.push_str(&token[trimmed.len()..]);
        } else {
            out.push_str(token);
        }
        rest = &run[len..];
    }
    out.push_str(rest);
    out
}

fn bytes_of(body: &Arc<str>) -> Vec<u8> {
    body.as_bytes().to_vec()
}
