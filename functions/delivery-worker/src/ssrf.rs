//! The worker's half of the SSRF guard: its DNS resolver. Which targets may be called is the one
//! target policy in `relay_shared::targets` (shared with the webhooks API's validation); this
//! module applies it to every address a host name resolves to. [`GuardedResolver`] is reqwest's
//! DNS resolver, so the connection goes to exactly the addresses that were checked (no second
//! lookup, no DNS rebinding window).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use relay_shared::targets::{Reason, TargetPolicy};

/// Looks host names up (the system resolver in production, a fixed table in tests).
pub trait Lookup: Send + Sync {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// `getaddrinfo` via tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        // `name.` is the same (absolute) name; some resolvers refuse the trailing dot form.
        let name = host
            .strip_suffix('.')
            .filter(|n| !n.is_empty())
            .unwrap_or(&host)
            .to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A fixed name → addresses table (tests: "a name resolving to 127.0.0.1", rebinding).
#[derive(Debug, Default, Clone)]
pub struct StaticLookup(pub std::collections::HashMap<String, Vec<IpAddr>>);

impl Lookup for StaticLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found = self.0.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
            })
        })
    }
}

/// What the guarded resolver reports (found again in reqwest's error source chain). Its `Display`
/// is what the tenant sees in the attempt log, so a refusal names the reason class and not the
/// address the name resolved to (that detail is logged here, server-side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveFailure {
    #[error("DNS lookup of `{host}` failed: {message}")]
    Dns { host: String, message: String },
    #[error("target `{host}` refused ({reason})")]
    Blocked { host: String, reason: Reason },
}

/// reqwest's DNS resolver: resolves, then refuses the whole host when any address is not allowed.
/// reqwest connects only to the addresses returned here.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<TargetPolicy>,
    lookup: Arc<dyn Lookup>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<TargetPolicy>, lookup: Arc<dyn Lookup>) -> Self {
        Self { policy, lookup }
    }

    /// The checked addresses of `host`.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, ResolveFailure> {
        // A bracketed or bare literal never reaches a resolver in reqwest, but be safe.
        let trimmed = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match trimmed.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                self.lookup
                    .lookup(host.to_owned())
                    .await
                    .map_err(|e| ResolveFailure::Dns {
                        host: host.to_owned(),
                        message: e.to_string(),
                    })?
            }
        };
        if addrs.is_empty() {
            return Err(ResolveFailure::Dns {
                host: host.to_owned(),
                message: "no addresses".into(),
            });
        }
        for ip in &addrs {
            self.policy.check_ip(*ip).map_err(|refusal| {
                tracing::warn!(host, detail = %refusal, "delivery target refused: a resolved address is not allowed");
                ResolveFailure::Blocked {
                    host: host.to_owned(),
                    reason: refusal.reason,
                }
            })?;
        }
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this
                .resolve_checked(&host)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let out: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolver_refuses_when_any_address_is_private() {
        let mut table = std::collections::HashMap::new();
        table.insert(
            "mixed.test".to_owned(),
            vec!["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()],
        );
        table.insert("public.test".to_owned(), vec!["8.8.8.8".parse().unwrap()]);
        table.insert(
            "meta.test".to_owned(),
            vec!["169.254.169.254".parse().unwrap()],
        );
        let strict = Arc::new(TargetPolicy::default());
        let r = GuardedResolver::new(strict.clone(), Arc::new(StaticLookup(table)));
        assert!(matches!(
            r.resolve_checked("mixed.test").await,
            Err(ResolveFailure::Blocked { .. })
        ));
        assert!(matches!(
            r.resolve_checked("meta.test").await,
            Err(ResolveFailure::Blocked { .. })
        ));
        assert!(matches!(
            r.resolve_checked("nope.test").await,
            Err(ResolveFailure::Dns { .. })
        ));
        assert_eq!(r.resolve_checked("public.test").await.unwrap().len(), 1);
        let sys = GuardedResolver::new(strict, Arc::new(SystemLookup));
        assert!(matches!(
            sys.resolve_checked("localhost").await,
            Err(ResolveFailure::Blocked { .. })
        ));
    }
}
