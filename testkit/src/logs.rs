//! Log lines a test can read: [`capture`] installs a JSON `tracing` subscriber (DEBUG and up) for
//! the current thread, the one a `#[tokio::test]` runs on, until the returned value is dropped.

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The captured lines; dropping it uninstalls the subscriber.
pub struct CapturedLogs {
    buf: Buffer,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures what this thread logs from now on, as `tracing_subscriber`'s JSON lines.
pub fn capture() -> CapturedLogs {
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // A callsite that another test's thread was registering while this subscriber was added may
    // have cached "nobody is interested" (tracing-core computes it against the subscribers it saw
    // when registration began): let such registrations finish, then recompute every callsite.
    std::thread::sleep(std::time::Duration::from_millis(20));
    tracing::callsite::rebuild_interest_cache();
    CapturedLogs { buf, _guard: guard }
}

impl CapturedLogs {
    /// Every line so far, parsed (`level`, `fields.message`, `fields.<name>`, `spans`).
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
