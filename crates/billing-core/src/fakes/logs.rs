//! What a piece of work logs, as the functions write it (JSON lines), for tests of the logs.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        super::lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` with this thread's logs captured as JSON lines; returns its output and the
/// lines. The capture holds on the current thread only (tokio's test runtime).
pub async fn capture_json<F: Future>(work: F) -> (F::Output, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let output = {
        let _guard = tracing::subscriber::set_default(subscriber);
        work.await
    };
    let lines = String::from_utf8_lossy(&super::lock(&captured.0)).into_owned();
    (output, lines)
}
