//! Parsing of untrusted webhook bodies into typed values, with errors that say what and where.

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("body is not valid JSON: {message} (line {line}, column {column})")]
    InvalidJson {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("invalid value at `{path}`: {message}")]
    InvalidField { path: String, message: String },
}

impl ParseError {
    /// A short machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::InvalidJson { .. } => "invalid_json",
            ParseError::InvalidField { .. } => "invalid_payload",
        }
    }
}

/// Deserialises `bytes` as `T`, reporting the JSON path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(inner, path)
    })?;
    de.end().map_err(|e| classify(e, String::new()))?;
    Ok(value)
}

fn classify(e: serde_json::Error, path: String) -> ParseError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            // The path says where more usefully than serde_json's line and column.
            let message = without_position(&e);
            let path = if path.is_empty() || path == "." {
                "$".to_owned()
            } else {
                format!("$.{path}")
            };
            ParseError::InvalidField { path, message }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            let message = without_position(&e);
            ParseError::InvalidJson {
                message,
                line: e.line(),
                column: e.column(),
            }
        }
    }
}

/// serde_json's message without the " at line L column C" it appends.
fn without_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    full.rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m)
        .to_owned()
}
