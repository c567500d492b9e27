//! `Retry-After` as Webex (and any subscriber) sends it: `relay_shared::retry::parse_retry_after`.
//! No panic; a delay-seconds value is exactly that many seconds; an HTTP-date gives the wait from
//! `now` (never negative) and moving `now` later never lengthens it.
#![no_main]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use relay_shared::retry::parse_retry_after;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    // `now` anywhere in chrono's range (the parser must not overflow on either side).
    let secs = i64::from_le_bytes(*head) % 8_000_000_000_000;
    let Some(now) = Utc.timestamp_opt(secs, 0).single() else {
        return;
    };
    let got = parse_retry_after(value, now);
    if let Ok(n) = value.trim().parse::<u64>() {
        assert_eq!(got, Some(Duration::from_secs(n)));
        return;
    }
    let Some(wait) = got else {
        return;
    };
    // Only an HTTP-date gets here: the wait is up to that instant.
    let at = DateTime::parse_from_rfc2822(value.trim())
        .expect("accepted, so a date")
        .with_timezone(&Utc);
    let expect = (at - now).to_std().unwrap_or(Duration::ZERO);
    assert_eq!(wait, expect);
    if let Some(later) = now.checked_add_signed(chrono::TimeDelta::seconds(60)) {
        let w2 = parse_retry_after(value, later).expect("same value parses");
        assert!(w2 <= wait);
    }
});
