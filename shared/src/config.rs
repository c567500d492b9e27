//! Reading configuration from the environment, with errors that name the variable.

use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {name} is required ({hint})")]
    Missing { name: String, hint: String },
    #[error("environment variable {name}=`{value}` is invalid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// A source of variables: the process environment, or a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty())
    }
}

pub fn required(env: &dyn Env, name: &str, hint: &str) -> Result<String, ConfigError> {
    env.var(name).ok_or_else(|| ConfigError::Missing {
        name: name.into(),
        hint: hint.into(),
    })
}

/// A parsed variable with a default when unset.
pub fn parsed_or<T: FromStr>(env: &dyn Env, name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env.var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name: name.into(),
            value: v,
            reason: e.to_string(),
        }),
    }
}

/// `true`/`false`/`1`/`0`/`yes`/`no`, default when unset.
pub fn flag(env: &dyn Env, name: &str, default: bool) -> Result<bool, ConfigError> {
    match env.var(name) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name: name.into(),
                value: v,
                reason: "expected true or false".into(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable() {
        let env = [("A", "12"), ("B", "x"), ("C", "maybe")];
        assert_eq!(parsed_or::<u32>(&env, "A", 1).unwrap(), 12);
        assert_eq!(parsed_or::<u32>(&env, "Z", 7).unwrap(), 7);
        let e = parsed_or::<u32>(&env, "B", 1).unwrap_err();
        assert!(e.to_string().contains("B=`x`"), "{e}");
        assert!(flag(&env, "C", false)
            .unwrap_err()
            .to_string()
            .contains("C="));
        let e = required(&env, "TABLE_NAME", "the DynamoDB table").unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable TABLE_NAME is required (the DynamoDB table)"
        );
    }
}
