//! RFC 8288 `Link` headers, as far as pagination needs them.

use reqwest::header::{HeaderMap, LINK};

/// The target of the first `rel="next"` link in any `Link` header.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(find_next)
}

fn find_next(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        // Parameters run up to the next link (a `,` followed by `<`), quoted strings aside.
        let params_end = next_link_start(after);
        let params = &after[..params_end];
        if params.split(';').any(is_rel_next) {
            return Some(target.trim().to_owned());
        }
        rest = &after[params_end..];
    }
}

fn next_link_start(s: &str) -> usize {
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => return i,
            _ => {}
        }
    }
    s.len()
}

fn is_rel_next(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    if !name.trim().eq_ignore_ascii_case("rel") {
        return false;
    }
    value
        .trim()
        .trim_matches('"')
        .split_ascii_whitespace()
        .any(|r| r.eq_ignore_ascii_case("next"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(values: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(LINK, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn finds_next_among_links() {
        assert_eq!(
            next_link(&h(&[
                r#"<https://webexapis.com/v1/people?cursor=abc>; rel="next""#
            ]))
            .as_deref(),
            Some("https://webexapis.com/v1/people?cursor=abc")
        );
        assert_eq!(
            next_link(&h(&[
                r#"<https://x/v1/a?c=1,2>; rel="prev", <https://x/v1/a?c=3>; rel="next""#
            ]))
            .as_deref(),
            Some("https://x/v1/a?c=3")
        );
        assert_eq!(
            next_link(&h(&[
                r#"<https://x/p>; rel="first""#,
                r#"<https://x/n>; rel=next"#
            ]))
            .as_deref(),
            Some("https://x/n")
        );
        assert_eq!(next_link(&h(&[r#"<https://x/p>; rel="prev""#])), None);
        assert_eq!(next_link(&h(&["garbage"])), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
