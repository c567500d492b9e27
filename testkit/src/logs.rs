//! Log lines a test can read: [`capture`] collects the JSON `tracing` lines (DEBUG and up) that the
//! current thread (the one a `#[tokio::test]` runs on) logs, until the returned value is dropped.
//!
//! One process-wide subscriber, installed by the first capture, writes each line to the buffer of
//! the thread that logged it (or nowhere). A per-thread default subscriber would be simpler but is
//! racy: tracing-core caches each callsite's interest against the subscribers it sees when the
//! callsite registers, so a line logged first on another, subscriber-less thread could be cached
//! as "nobody is interested" and vanish from a capture under load.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};

use serde_json::Value;

/// The captured lines; dropping it stops the capture on this thread.
pub struct CapturedLogs {
    buf: Buffer,
    previous: Option<Buffer>,
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CURRENT: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// Appends to the logging thread's capture buffer, if it has one.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|c| {
            if let Some(buf) = c.borrow().as_ref() {
                buf.0.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static INSTALL: Once = Once::new();

/// Captures what this thread logs from now on, as `tracing_subscriber`'s JSON lines.
pub fn capture() -> CapturedLogs {
    INSTALL.call_once(|| {
        // The relay's own JSON line (`traceId`, `spanId`, `requestId` inside a started span).
        let subscriber = tracing_subscriber::fmt()
            .json()
            .event_format(relay_shared::logging::JsonWithIds::new())
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| ThreadWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in a test binary");
    });
    let buf = Buffer::default();
    let previous = CURRENT.with(|c| c.borrow_mut().replace(buf.clone()));
    CapturedLogs { buf, previous }
}

impl Drop for CapturedLogs {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

impl CapturedLogs {
    /// Every line so far, parsed (`level`, `fields.message`, `fields.<name>`, `spans`, and
    /// `traceId`/`spanId`/`requestId` as on Lambda).
    pub fn lines(&self) -> Vec<Value> {
        let bytes = self.buf.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .expect("tracing writes UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }

    /// The lines whose message is `message`.
    pub fn with_message(&self, message: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    }
}
