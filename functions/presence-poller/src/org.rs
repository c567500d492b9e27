//! The token's own org, resolved once per cold start with `GET /v1/people/me` (the shared
//! `WebexClient` port has no such call): `PRESENCE_ORG_ID` left empty means that org, and `orgId`
//! is sent to `GET /v1/people` only for another org (Webex: "Only admin users of another
//! organization (such as partners) may use this parameter"). The same answer tells a bot's token,
//! which cannot list an org, from a person's: a bot is refused.

use std::time::Duration;

use serde::Deserialize;

use crate::config::PollerConfig;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    #[serde(default)]
    org_id: Option<String>,
    /// `person`, `bot` or `appuser`.
    #[serde(default, rename = "type")]
    person_type: Option<String>,
}

impl Me {
    fn org(self) -> Result<String, String> {
        self.org_id
            .filter(|o| !o.is_empty())
            .ok_or_else(|| "GET /people/me returned no orgId".to_owned())
    }

    /// A bot's token cannot list an org's people (`relay_shared::webex_token::refuse_bot`).
    fn refuse_bot(&self) -> Result<(), String> {
        relay_shared::webex_token::refuse_bot(self.person_type.as_deref())
            .map_err(|e| e.to_string())
    }
}

/// The org of the token's owner (a bot's token is an error).
pub async fn own_org_id(base_url: &str, token: &str) -> Result<String, String> {
    let me = me(base_url, token).await?;
    me.refuse_bot()?;
    me.org()
}

/// `GET /people/me`.
async fn me(base_url: &str, token: &str) -> Result<Me, String> {
    let url = format!("{}/people/me", base_url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let resp = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("GET /people/me: {}", e.without_url()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("GET /people/me answered HTTP {}", status.as_u16()));
    }
    resp.json()
        .await
        .map_err(|e| format!("GET /people/me: {}", e.without_url()))
}

/// Fills `config.token_org_id` (and an empty `config.org_id`) from the token's org. Fails when the
/// token is a bot's, or when the org to poll is unknown; otherwise an unresolved token org is
/// logged and `orgId` stays in the query (an error from Webex rather than another org's people).
pub async fn resolve(config: &mut PollerConfig, base_url: &str, token: &str) -> Result<(), String> {
    let me = me(base_url, token).await;
    if let Ok(me) = &me {
        me.refuse_bot()?;
    }
    match me.and_then(Me::org) {
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
