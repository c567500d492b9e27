//! The compressed form of a stored value (the event log's bodies, `super::events`; the call
//! state's records, `super::calls`): one format byte, then the bytes.
//!
//! * `1`: raw deflate (RFC 1951, level 9) with the value kind's preset dictionary
//!   ([`Codec::dictionary`]);
//! * `0`: the bytes as they are (a value the deflate would not shrink, or one over
//!   [`MAX_UNPACKED_BYTES`]).
//!
//! A format, once written, is read for as long as items live: a better dictionary is a new
//! format byte (a new [`Codec`] constant), the old one kept for reading. Deflate with a preset
//! dictionary in pure Rust: flate2 on zlib-rs (miniz_oxide has no preset dictionaries).
//!
//! Reading is bounded: a stream that would inflate past [`MAX_UNPACKED_BYTES`] is `Corrupt`,
//! never an allocation of whatever a damaged (or hand-written) item asks for. A 400 KB item could
//! otherwise inflate to about 400 MB (deflate's ~1000:1 at most), an out-of-memory crash in a
//! 128–512 MB Lambda.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{StoreError, MAX_STORE_ITEM_BYTES};

/// The most a compressed value may inflate to: 1 MiB, more than any item can hold as written
/// (an item is at most [`MAX_STORE_ITEM_BYTES`]; the values compressed are bodies of at most
/// 256 KiB Webex requests and call records of a few KiB). [`Codec::pack`] compresses only values
/// up to this size (a larger one is kept plain, and so is over the item limit and refused as
/// `TooLarge` by the write), so whatever a write stored compressed reads back within it.
pub(crate) const MAX_UNPACKED_BYTES: usize = 1024 * 1024;

const _: () = assert!(MAX_UNPACKED_BYTES > MAX_STORE_ITEM_BYTES);

const PLAIN: u8 = 0;
const DEFLATE_V1: u8 = 1;

/// One kind of compressed value: its preset dictionary and the name its errors carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codec {
    /// What the value is, for `Corrupt` messages ("event body", "call state").
    pub(crate) what: &'static str,
    /// The preset dictionary of format `1`. Never change it: values compressed with it would no
    /// longer read (a new dictionary is a new format).
    pub(crate) dictionary: &'static [u8],
}

impl Codec {
    fn failed(&self, part: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{} {part}: {e}", self.what))
    }

    /// The stored form of `value`.
    pub(crate) fn pack(&self, value: &[u8]) -> Vec<u8> {
        let compressed = (value.len() <= MAX_UNPACKED_BYTES)
            .then(|| deflate_with(value, self.dictionary).ok())
            .flatten();
        match compressed {
            Some(z) if z.len() < value.len() => [&[DEFLATE_V1][..], &z].concat(),
            // Not smaller, too large to compress, or (never seen) the compressor refused.
            _ => [&[PLAIN][..], value].concat(),
        }
    }

    /// The value `stored` holds: `Corrupt` for an unknown format, a damaged or cut stream, or
    /// one inflating past [`MAX_UNPACKED_BYTES`].
    pub(crate) fn unpack(&self, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        match stored.split_first() {
            Some((&PLAIN, rest)) => Ok(rest.to_vec()),
            Some((&DEFLATE_V1, rest)) => inflate_with(rest, self.dictionary, MAX_UNPACKED_BYTES)
                .map_err(|e| self.failed("decompression", e)),
            Some((other, _)) => Err(self.failed("format", format!("unknown format {other}"))),
            None => Err(self.failed("format", "empty")),
        }
    }

    /// [`Codec::unpack`] of a UTF-8 value.
    pub(crate) fn unpack_text(&self, stored: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(self.unpack(stored)?).map_err(|e| self.failed("text", e))
    }
}

/// Raw deflate (level 9) of `input` with `dictionary` preset.
fn deflate_with(input: &[u8], dictionary: &[u8]) -> Result<Vec<u8>, String> {
    let mut z = Compress::new(Compression::best(), false);
    z.set_dictionary(dictionary).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    loop {
        let done = usize::try_from(z.total_in()).unwrap_or(input.len());
        let status = z
            .compress_vec(&input[done..], &mut out, FlushCompress::Finish)
            .map_err(|e| e.to_string())?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        out.reserve(out.capacity().max(64));
    }
}

/// The inverse of [`deflate_with`] (the same `dictionary`), refusing to produce more than `max`
/// bytes: the output never grows past `max` + 1 (the one byte over tells "too large" from
/// "exactly `max`").
fn inflate_with(input: &[u8], dictionary: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut z = Decompress::new(false);
    z.set_dictionary(dictionary).map_err(|e| e.to_string())?;
    let limit = max.saturating_add(1);
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).min(limit));
    loop {
        let done = usize::try_from(z.total_in()).unwrap_or(input.len());
        let before = (z.total_in(), z.total_out());
        let status = z
            .decompress_vec(&input[done..], &mut out, FlushDecompress::Finish)
            .map_err(|e| e.to_string())?;
        if out.len() > max {
            return Err(format!("inflates to more than {max} bytes"));
        }
        match status {
            Status::StreamEnd => return Ok(out),
            // Out of room: more, up to the limit. No progress with room left: the stream is cut
            // short.
            _ if out.len() == out.capacity() => {
                let more = out.capacity().max(64).min(limit - out.len());
                out.reserve_exact(more);
            }
            _ if (z.total_in(), z.total_out()) == before => return Err("truncated".into()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Codec = Codec {
        what: "test value",
        dictionary: b"\"callId\":\"Y2lzY29zcGFyazovL3VzL0NBTEwv\"",
    };

    #[test]
    fn values_round_trip_in_both_formats() {
        let long = "abc".repeat(10_000);
        for value in ["", "x", "{}", "é ✓ 😀 \"\\\u{0}", &long] {
            let packed = TEST.pack(value.as_bytes());
            assert_eq!(TEST.unpack_text(&packed).unwrap(), value);
        }
        // Too short to shrink: stored as it is.
        assert_eq!(TEST.pack(b"{}"), b"\x00{}");
        let packed = TEST.pack("abc".repeat(100).as_bytes());
        assert_eq!(packed[0], 1);
        assert!(packed.len() < 50);
        // Exactly the bound still reads; one byte more is never compressed.
        let at_max = vec![b'a'; MAX_UNPACKED_BYTES];
        let packed = TEST.pack(&at_max);
        assert_eq!(packed[0], 1);
        assert_eq!(TEST.unpack(&packed).unwrap(), at_max);
        let over = vec![b'a'; MAX_UNPACKED_BYTES + 1];
        assert_eq!(TEST.pack(&over)[0], 0);
    }

    #[test]
    fn damage_is_corrupt() {
        let packed = TEST.pack("abc".repeat(100).as_bytes());
        for damaged in [
            &packed[..packed.len() / 2],
            &[9, 1, 2][..],
            &[][..],
            &[1][..],
        ] {
            assert!(
                matches!(TEST.unpack(damaged), Err(StoreError::Corrupt(_))),
                "{damaged:?}"
            );
        }
        assert!(matches!(
            TEST.unpack_text(&[0, 0xff]),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// A stream that inflates past the bound (a damaged or hand-written item: 64 MiB of zeros
    /// deflate to about 64 KB, well inside an item) is refused as `Corrupt` once the output
    /// passes the bound, never inflated whole.
    #[test]
    fn a_stream_inflating_past_the_bound_is_corrupt() {
        let bomb = deflate_with(&vec![0u8; 64 * 1024 * 1024], TEST.dictionary).unwrap();
        assert!(bomb.len() < MAX_STORE_ITEM_BYTES, "{} bytes", bomb.len());
        let stored = [&[DEFLATE_V1][..], &bomb].concat();
        match TEST.unpack(&stored) {
            Err(StoreError::Corrupt(m)) => {
                assert!(m.contains("more than 1048576 bytes"), "{m}");
                assert!(m.starts_with("test value decompression"), "{m}");
            }
            other => panic!("{:?}", other.map(|v| v.len())),
        }
        // Just over the bound: refused too.
        let just_over = deflate_with(&vec![7u8; MAX_UNPACKED_BYTES + 1], TEST.dictionary).unwrap();
        let stored = [&[DEFLATE_V1][..], &just_over].concat();
        assert!(matches!(TEST.unpack(&stored), Err(StoreError::Corrupt(_))));
        // The inflater itself never holds more than the bound + 1.
        let err = inflate_with(&bomb, TEST.dictionary, 1000).unwrap_err();
        assert!(err.contains("more than 1000"), "{err}");
    }
}
