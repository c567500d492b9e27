use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An RFC 3339 timestamp from Webex that re-serialises exactly as it was received
/// (`.7Z` stays `.7Z`), while still ordering by the instant it denotes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WebexTime {
    raw: String,
    at: DateTime<Utc>,
}

impl WebexTime {
    pub fn parse(raw: &str) -> Result<Self, chrono::ParseError> {
        let at = DateTime::parse_from_rfc3339(raw)?.with_timezone(&Utc);
        Ok(Self {
            raw: raw.to_owned(),
            at,
        })
    }
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl PartialOrd for WebexTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WebexTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

impl fmt::Debug for WebexTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for WebexTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for WebexTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        WebexTime::parse(&raw).map_err(|e| {
            serde::de::Error::custom(format!("invalid RFC 3339 timestamp `{raw}`: {e}"))
        })
    }
}
