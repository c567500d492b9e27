//! `PRESENCE_ORG_ID` left empty means "the token's own org": resolved once per cold start with
//! `GET /v1/people/me` (the shared `WebexClient` port has no such call).

use std::time::Duration;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    #[serde(default)]
    org_id: Option<String>,
}

/// The org of the token's owner.
pub async fn own_org_id(base_url: &str, token: &str) -> Result<String, String> {
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
    let me: Me = resp
        .json()
        .await
        .map_err(|e| format!("GET /people/me: {}", e.without_url()))?;
    me.org_id
        .filter(|o| !o.is_empty())
        .ok_or_else(|| "GET /people/me returned no orgId".to_owned())
}
