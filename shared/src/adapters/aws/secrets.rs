//! Secrets Manager: the one reader of the relay's secrets (the Webex webhook secret for ingest and
//! relayctl, the Webex access token for the presence poller) and the one `SecretString` parser.

use secrecy::SecretString;

use crate::webex::{SecretRole, WebhookSecrets};

/// What a secret is called in errors, and the JSON keys that may hold it.
#[derive(Debug, Clone, Copy)]
pub struct SecretKind {
    /// `the Webex webhook secret`.
    pub what: &'static str,
    /// Keys looked up, in order, when the `SecretString` is a JSON object (as console-created
    /// key/value secrets are).
    pub json_keys: &'static [&'static str],
    /// Whether a JSON object holding none of the keys is itself the secret (a webhook secret may
    /// be any text) rather than a mistake (an access token never looks like JSON).
    pub json_may_be_literal: bool,
}

/// The secret Webex signs `X-Spark-Signature` with (`WEBEX_WEBHOOK_SECRET_ARN`).
pub const WEBHOOK_SECRET: SecretKind = SecretKind {
    what: "the Webex webhook secret",
    json_keys: &["secret", "webhookSecret", "WEBEX_WEBHOOK_SECRET"],
    json_may_be_literal: true,
};

/// The presence poller's Webex access token (`WEBEX_TOKEN_SECRET_ARN`).
pub const WEBEX_TOKEN: SecretKind = SecretKind {
    what: "the Webex token secret",
    json_keys: &["token", "accessToken", "access_token", "WEBEX_TOKEN"],
    json_may_be_literal: false,
};

/// Why a secret could not be read; the message names the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// A `SecretString` is the secret itself (surrounding whitespace and line ends ignored) or a JSON
/// object holding it under one of `kind.json_keys`.
pub fn parse_secret_string(raw: &str, kind: &SecretKind) -> Result<SecretString, SecretError> {
    let raw = raw.trim();
    if raw.starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::Object(map)) => {
                let mut held = kind
                    .json_keys
                    .iter()
                    .filter_map(|k| map.get(*k).and_then(|v| v.as_str()))
                    .map(str::trim)
                    .peekable();
                if held.peek().is_some() {
                    return match held.find(|v| !v.is_empty()) {
                        Some(v) => Ok(SecretString::from(v)),
                        None => Err(SecretError(format!("{} is empty", kind.what))),
                    };
                }
                if !kind.json_may_be_literal
                    || WEBHOOK_FORM_KEYS.iter().any(|k| map.contains_key(*k))
                {
                    return Err(SecretError(format!(
                        "{} is JSON without a `{}` field",
                        kind.what,
                        kind.json_keys.join("`/`")
                    )));
                }
            }
            Ok(_) | Err(_) if kind.json_may_be_literal => {}
            Ok(_) => {
                return Err(SecretError(format!(
                    "{} is JSON but not an object",
                    kind.what
                )))
            }
            Err(e) => return Err(SecretError(format!("{} is not valid JSON: {e}", kind.what))),
        }
    }
    if raw.is_empty() {
        return Err(SecretError(format!("{} is empty", kind.what)));
    }
    Ok(SecretString::from(raw))
}

/// Keys of the webhook secret's rotation and per-org forms ([`parse_webhook_secrets`]): a JSON
/// object holding one is never taken as the literal secret text.
const WEBHOOK_FORM_KEYS: &[&str] = &[
    WEBHOOK_ORGS_KEY,
    "previous",
    "WEBEX_WEBHOOK_SECRET_PREVIOUS",
];
/// The previous webhook secret, during a rotation.
const WEBHOOK_PREVIOUS_KEYS: &[&str] = &["previous", "WEBEX_WEBHOOK_SECRET_PREVIOUS"];
/// One webhook secret per org: `{"orgs": {"<orgId>": {"secret": …, "previous": …}}}`.
const WEBHOOK_ORGS_KEY: &str = "orgs";

/// The Webex webhook secrets a `SecretString` holds (docs/telephony-ingest.md, "Webhook secrets"):
/// - the secret itself, or `{"secret": "…"}` ([`parse_secret_string`] with [`WEBHOOK_SECRET`]):
///   one secret for every org;
/// - `{"secret": "…", "previous": "…"}`: the same during a rotation (`previous` empty or `null`:
///   none);
/// - `{"orgs": {"<orgId>": {"secret": "…", "previous": "…"}, "<orgId>": "…"}}`: one secret (and
///   its previous one) per org, each vouching only for its own org's events.
///
/// Errors name the form and the org, never a secret.
pub fn parse_webhook_secrets(raw: &str) -> Result<WebhookSecrets, SecretError> {
    let what = WEBHOOK_SECRET.what;
    let map = match serde_json::from_str::<serde_json::Value>(raw.trim()) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => {
            return Ok(WebhookSecrets::single(
                parse_secret_string(raw, &WEBHOOK_SECRET)?,
                None,
            ))
        }
    };
    let Some(orgs) = map.get(WEBHOOK_ORGS_KEY) else {
        let current = parse_secret_string(raw, &WEBHOOK_SECRET)?;
        let previous = webhook_previous(&map, what)?;
        return Ok(WebhookSecrets::single(current, previous));
    };
    if let Some(k) = WEBHOOK_SECRET
        .json_keys
        .iter()
        .chain(WEBHOOK_PREVIOUS_KEYS)
        .find(|k| map.contains_key(**k))
    {
        return Err(SecretError(format!(
            "{what} has both `{WEBHOOK_ORGS_KEY}` and a top-level `{k}`: with one secret per org, \
             every secret belongs to an org"
        )));
    }
    let orgs = match orgs {
        serde_json::Value::Object(orgs) if !orgs.is_empty() => orgs,
        _ => {
            return Err(SecretError(format!(
                "{what}: `{WEBHOOK_ORGS_KEY}` must be a non-empty object of orgId → secret"
            )))
        }
    };
    let mut secrets = WebhookSecrets::default();
    for (org, entry) in orgs {
        let what = format!(
            "{what} of org `{}`",
            org.chars().take(128).collect::<String>()
        );
        if org.trim().is_empty() {
            return Err(SecretError(format!("{what}: the orgId is empty")));
        }
        let (current, previous) = match entry {
            serde_json::Value::String(s) => (non_empty(s, &what)?, None),
            serde_json::Value::Object(e) => {
                let current = WEBHOOK_SECRET
                    .json_keys
                    .iter()
                    .find_map(|k| e.get(*k))
                    .ok_or_else(|| SecretError(format!("{what} has no `secret`")))?;
                let current = match current {
                    serde_json::Value::String(s) => non_empty(s, &what)?,
                    _ => return Err(SecretError(format!("{what}: `secret` is not a string"))),
                };
                (current, webhook_previous(e, &what)?)
            }
            _ => {
                return Err(SecretError(format!(
                    "{what} is neither a string nor {{\"secret\": …}}"
                )))
            }
        };
        secrets.push(Some(org.clone()), SecretRole::Current, current);
        if let Some(p) = previous {
            secrets.push(Some(org.clone()), SecretRole::Previous, p);
        }
    }
    Ok(secrets)
}

/// The `previous` secret of a JSON form: absent, `null` or empty means none.
fn webhook_previous(
    map: &serde_json::Map<String, serde_json::Value>,
    what: &str,
) -> Result<Option<SecretString>, SecretError> {
    match WEBHOOK_PREVIOUS_KEYS.iter().find_map(|k| map.get(*k)) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(SecretString::from(s.trim()))),
        Some(_) => Err(SecretError(format!("{what}: `previous` is not a string"))),
    }
}

fn non_empty(s: &str, what: &str) -> Result<SecretString, SecretError> {
    match s.trim() {
        "" => Err(SecretError(format!("{what} is empty"))),
        s => Ok(SecretString::from(s)),
    }
}

/// Reads secrets by ARN or name. Cheap to clone (the client is an `Arc`).
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }

    /// A client from the environment (region, credentials, `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub async fn from_env() -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_sdk_config(&sdk)
    }

    /// A client from an already loaded SDK configuration.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_secretsmanager::Client::new(sdk))
    }

    /// `GetSecretValue` of `secret_id`, parsed by [`parse_secret_string`].
    pub async fn read(
        &self,
        secret_id: &str,
        kind: &SecretKind,
    ) -> Result<SecretString, SecretError> {
        parse_secret_string(&self.secret_string(secret_id, kind.what).await?, kind)
    }

    /// `GetSecretValue` of `secret_id`, parsed by [`parse_webhook_secrets`]: every Webex webhook
    /// secret it holds (per org, and the previous ones during a rotation).
    pub async fn read_webhook_secrets(
        &self,
        secret_id: &str,
    ) -> Result<WebhookSecrets, SecretError> {
        parse_webhook_secrets(&self.secret_string(secret_id, WEBHOOK_SECRET.what).await?)
    }

    /// `PutSecretValue`: `value` becomes the secret's current version (`what` names it in errors).
    pub async fn write(&self, secret_id: &str, what: &str, value: &str) -> Result<(), SecretError> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| {
                SecretError(format!(
                    "writing {what} to Secrets Manager ({secret_id}): {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        Ok(())
    }

    /// The raw `SecretString` (`what` names it in errors).
    pub async fn secret_string(&self, secret_id: &str, what: &str) -> Result<String, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                SecretError(format!(
                    "reading {what} from Secrets Manager ({secret_id}): {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        out.secret_string()
            .map(str::to_owned)
            .ok_or_else(|| SecretError(format!("{what} ({secret_id}) has no SecretString")))
    }
}

/// The Webex token record (`WEBEX_TOKEN_SECRET_ARN`) in Secrets Manager, written back after each
/// refresh. Writers are serialized by the token manager's lease, not by Secrets Manager (which has
/// no conditional put).
#[derive(Debug, Clone)]
pub struct SecretsManagerVault {
    secrets: SecretsManager,
    secret_id: String,
}

impl SecretsManagerVault {
    pub fn new(secrets: SecretsManager, secret_id: impl Into<String>) -> Self {
        Self {
            secrets,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait::async_trait]
impl crate::webex_token::TokenVault for SecretsManagerVault {
    fn id(&self) -> &str {
        &self.secret_id
    }

    async fn load(
        &self,
    ) -> Result<crate::webex_token::TokenRecord, crate::webex_token::TokenError> {
        let raw = self
            .secrets
            .secret_string(&self.secret_id, WEBEX_TOKEN.what)
            .await
            .map_err(|e| crate::webex_token::TokenError::Vault(e.0))?;
        crate::webex_token::TokenRecord::parse(&raw, WEBEX_TOKEN.what)
    }

    async fn store(
        &self,
        record: &crate::webex_token::TokenRecord,
    ) -> Result<(), crate::webex_token::TokenError> {
        self.secrets
            .write(&self.secret_id, WEBEX_TOKEN.what, &record.to_json())
            .await
            .map_err(|e| crate::webex_token::TokenError::Vault(e.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(raw: &str, kind: &SecretKind) -> Result<String, SecretError> {
        parse_secret_string(raw, kind).map(|s| s.expose_secret().to_owned())
    }

    #[test]
    fn webhook_secret_plain_or_json() {
        let k = &WEBHOOK_SECRET;
        assert_eq!(parse("abc\n", k).unwrap(), "abc");
        assert_eq!(parse("b\r\n", k).unwrap(), "b");
        assert_eq!(parse(r#"{"secret":"s3"}"#, k).unwrap(), "s3");
        assert_eq!(parse(r#"{"webhookSecret":"s4"}"#, k).unwrap(), "s4");
        assert_eq!(parse(r#"{"WEBEX_WEBHOOK_SECRET":"s5"}"#, k).unwrap(), "s5");
        // Any text may be a webhook secret, JSON-looking text too.
        assert_eq!(parse(r#"{"other":"x"}"#, k).unwrap(), r#"{"other":"x"}"#);
        assert_eq!(parse("{not json", k).unwrap(), "{not json");
        assert!(parse(" \n", k).unwrap_err().0.contains("is empty"));
        assert!(parse(r#"{"secret":""}"#, k)
            .unwrap_err()
            .0
            .contains("is empty"));
    }

    #[test]
    fn webex_token_plain_or_json() {
        let k = &WEBEX_TOKEN;
        assert_eq!(parse(" abc \n", k).unwrap(), "abc");
        assert_eq!(parse(r#"{"token":"t1"}"#, k).unwrap(), "t1");
        assert_eq!(parse(r#"{"accessToken":"t2","x":1}"#, k).unwrap(), "t2");
        assert_eq!(parse(r#"{"access_token":" t3 "}"#, k).unwrap(), "t3");
        assert_eq!(
            parse(r#"{"token":"","WEBEX_TOKEN":"t4"}"#, k).unwrap(),
            "t4"
        );
        assert!(parse(r#"{"nope":"t"}"#, k).is_err());
        assert!(parse("{broken", k)
            .unwrap_err()
            .0
            .contains("not valid JSON"));
        assert!(parse("  ", k).is_err());
    }

    #[test]
    fn errors_never_show_the_secret() {
        let e = parse(r#"{"nope":"hunter2"}"#, &WEBEX_TOKEN).unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");
        assert!(
            !format!("{:?}", parse_secret_string("hunter2", &WEBHOOK_SECRET)).contains("hunter2")
        );
    }

    /// `(org, role, secret)` of every webhook secret `raw` holds.
    fn webhook(raw: &str) -> Result<Vec<(Option<String>, SecretRole, String)>, SecretError> {
        Ok(parse_webhook_secrets(raw)?
            .iter()
            .map(|s| {
                (
                    s.org_id.clone(),
                    s.role,
                    s.secret.expose_secret().to_owned(),
                )
            })
            .collect())
    }

    #[test]
    fn webhook_secrets_every_form() {
        use SecretRole::{Current, Previous};
        let any = |role, s: &str| (None, role, s.to_owned());
        let org = |o: &str, role, s: &str| (Some(o.to_owned()), role, s.to_owned());
        // The single-secret forms, as before.
        assert_eq!(webhook("abc\n").unwrap(), [any(Current, "abc")]);
        assert_eq!(webhook(r#"{"secret":"s"}"#).unwrap(), [any(Current, "s")]);
        assert_eq!(
            webhook(r#"{"other":"x"}"#).unwrap(),
            [any(Current, r#"{"other":"x"}"#)]
        );
        assert_eq!(webhook("{not json").unwrap(), [any(Current, "{not json")]);
        // A rotation.
        assert_eq!(
            webhook(r#"{"secret":"new","previous":" old "}"#).unwrap(),
            [any(Current, "new"), any(Previous, "old")]
        );
        assert_eq!(
            webhook(r#"{"WEBEX_WEBHOOK_SECRET":"n","WEBEX_WEBHOOK_SECRET_PREVIOUS":"o"}"#).unwrap(),
            [any(Current, "n"), any(Previous, "o")]
        );
        for done in [r#""previous":"""#, r#""previous":null"#] {
            let raw = format!(r#"{{"secret":"new",{done}}}"#);
            assert_eq!(webhook(&raw).unwrap(), [any(Current, "new")], "{raw}");
        }
        // One per org.
        assert_eq!(
            webhook(r#"{"orgs":{"A":{"secret":"a","previous":"a0"},"B":"b","C":{"secret":"c"}}}"#)
                .unwrap(),
            [
                org("A", Current, "a"),
                org("A", Previous, "a0"),
                org("B", Current, "b"),
                org("C", Current, "c")
            ]
        );
        // Mistakes are refused, not taken as the secret text.
        for (raw, want) in [
            (r#"{"previous":"hunter2"}"#, "without a `secret`"),
            (r#"{"secret":"","previous":"hunter2"}"#, "is empty"),
            (
                r#"{"secret":"s","previous":7}"#,
                "`previous` is not a string",
            ),
            (r#"{"orgs":{}}"#, "non-empty object"),
            (r#"{"orgs":"hunter2"}"#, "non-empty object"),
            (
                r#"{"orgs":{"A":"x"},"secret":"hunter2"}"#,
                "both `orgs` and a top-level `secret`",
            ),
            (
                r#"{"orgs":{"A":{"previous":"hunter2"}}}"#,
                "org `A` has no `secret`",
            ),
            (r#"{"orgs":{"A":{"secret":" "}}}"#, "org `A` is empty"),
            (
                r#"{"orgs":{"A":{"secret":"s","previous":["hunter2"]}}}"#,
                "not a string",
            ),
            (r#"{"orgs":{"A":7}}"#, "neither a string"),
            (r#"{"orgs":{"":"hunter2"}}"#, "orgId is empty"),
        ] {
            let e = webhook(raw).unwrap_err();
            assert!(e.0.contains(want), "{raw}: {e}");
            assert!(
                !e.0.contains("hunter2"),
                "{raw}: the error shows the secret: {e}"
            );
        }
    }

    #[test]
    fn the_single_secret_reader_refuses_the_structured_forms_it_cannot_hold() {
        // relayctl reads one secret: the current one of a rotation, never an `orgs` JSON as text.
        let k = &WEBHOOK_SECRET;
        assert_eq!(
            parse(r#"{"secret":"new","previous":"old"}"#, k).unwrap(),
            "new"
        );
        assert!(parse(r#"{"orgs":{"A":"hunter2"}}"#, k).is_err());
        assert!(parse(r#"{"previous":"hunter2"}"#, k).is_err());
    }
}
