//! Secrets Manager: the one reader of the relay's secrets (the Webex webhook secret for ingest and
//! relayctl, the Webex access token for the presence poller) and the one `SecretString` parser.

use secrecy::SecretString;

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
                if !kind.json_may_be_literal {
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
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                SecretError(format!(
                    "reading {} from Secrets Manager ({secret_id}): {}",
                    kind.what,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        let raw = out.secret_string().ok_or_else(|| {
            SecretError(format!("{} ({secret_id}) has no SecretString", kind.what))
        })?;
        parse_secret_string(raw, kind)
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
}
