//! The token's own org, resolved once per cold start with `GET /v1/people/me` through the
//! `WebexClient` port (`me()`; the poller's `RefreshingWebex` refreshes the token after a 401 and
//! retries, so an expired token at cold start is refreshed, not fatal): `PRESENCE_ORG_ID` left
//! empty means that org, and `orgId` is sent to `GET /v1/people` only for another org (Webex:
//! "Only admin users of another organization (such as partners) may use this parameter"). The
//! same answer tells a bot's token, which cannot list an org, from a person's: a bot is refused.

use relay_shared::ports::WebexClient;
use relay_shared::webex::Person;

use crate::config::PollerConfig;

/// `GET /people/me`.
async fn me(webex: &dyn WebexClient) -> Result<Person, String> {
    webex.me().await.map_err(|e| format!("GET /people/me: {e}"))
}

/// A bot's token cannot list an org's people (`relay_shared::webex_token::refuse_bot`).
fn refuse_bot(me: &Person) -> Result<(), String> {
    relay_shared::webex_token::refuse_bot(me.person_type.as_deref()).map_err(|e| e.to_string())
}

fn org(me: Person) -> Result<String, String> {
    me.org_id
        .filter(|o| !o.is_empty())
        .ok_or_else(|| "GET /people/me returned no orgId".to_owned())
}

/// The org of the token's owner (a bot's token is an error).
pub async fn own_org_id(webex: &dyn WebexClient) -> Result<String, String> {
    let me = me(webex).await?;
    refuse_bot(&me)?;
    org(me)
}

/// Fills `config.token_org_id` (and an empty `config.org_id`) from the token's org. Fails when the
/// token is a bot's, or when the org to poll is unknown; otherwise an unresolved token org is
/// logged and `orgId` stays in the query (an error from Webex rather than another org's people).
pub async fn resolve(config: &mut PollerConfig, webex: &dyn WebexClient) -> Result<(), String> {
    let me = me(webex).await;
    if let Ok(me) = &me {
        refuse_bot(me)?;
    }
    match me.and_then(org) {
        Ok(org) => {
            if config.org_id.is_empty() {
                config.org_id = org.clone();
            }
            config.token_org_id = Some(org);
            Ok(())
        }
        Err(e) if config.org_id.is_empty() => Err(format!(
            "PRESENCE_ORG_ID is empty and the token's org could not be resolved: {e}"
        )),
        Err(e) => {
            tracing::warn!(error = %e, org_id = %config.org_id, "the token's org is unknown: listing people with orgId");
            Ok(())
        }
    }
}

/// The org whose webhook secret a recreated webhook gets: the token's own, as `relayctl
/// webex-webhooks ensure` picks it (the webhook belongs to the token's org), else the polled org.
pub fn signing_org(config: &PollerConfig) -> String {
    config
        .token_org_id
        .clone()
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| config.org_id.clone())
}
