//! webex-relay's test kit, shared by every crate's integration tests (`tests/it/`): whether and how
//! a test reaches local AWS ([`aws`]), a queue that fails on demand ([`FlakyQueue`]), the
//! fixtures the suites build on ([`fixtures`]), a fake Webex ([`fake_webex`]) and crash injection
//! over the stores and queues ([`crash`]). A dev-dependency only; never linked into a function.

pub mod aws;
pub mod crash;
pub mod fake_webex;
pub mod fixtures;
mod flaky;
pub mod logs;

pub use flaky::FlakyQueue;

use std::io::Write;

/// Whether `RELAY_REQUIRE_AWS=1` (the test command exports it with the local servers): then a test
/// that needs something missing fails instead of skipping.
pub fn required() -> bool {
    std::env::var("RELAY_REQUIRE_AWS").is_ok_and(|v| v.trim() == "1")
}

/// The one skip rule. `missing` names the variables `test` needs that are unset: none → run
/// (`true`); otherwise a panic under `RELAY_REQUIRE_AWS=1`, else a `skipped: …` note and `false`.
pub fn gate(test: &str, needs: &str, missing: &[&str]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let verb = if missing.len() == 1 { "is" } else { "are" };
    let missing = missing.join(" and ");
    assert!(
        !required(),
        "{test} needs {needs}, but {missing} {verb} not set and RELAY_REQUIRE_AWS=1"
    );
    // Straight to stderr, past the test harness's capture, so the skip is visible.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test} needs {needs} — run scripts/test, or set {missing}"
    );
    false
}

/// The value of `var` (blank counts as unset), or `None` after [`gate`] said why `test` skips.
pub fn var(test: &str, var: &str, needs: &str) -> Option<String> {
    let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    if value.is_none() {
        gate(test, needs, &[var]);
    }
    value
}
