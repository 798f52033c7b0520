//! For tests, here and in other crates (feature `test-support`): the log lines a piece of work
//! writes, such as the error a money mismatch is reported by.

use std::sync::Arc;

/// A buffer the log lines of a test are written into.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` on this thread with every log line it writes (all levels) kept, and answers its
/// output with those lines as text.
pub async fn logged<F: std::future::Future>(work: F) -> (F::Output, String) {
    let buffer = LogBuffer::default();
    let kept = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || kept.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let output = work.await;
    drop(guard);
    let bytes = buffer
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    (output, String::from_utf8_lossy(&bytes).into_owned())
}
