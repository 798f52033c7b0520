//! Counts what the store sends to the database, for `/metrics` and the benchmark.
//!
//! Every statement Diesel starts (queries, `BEGIN`, `COMMIT`, savepoints) and every statement it
//! prepares for its cache is counted. On PostgreSQL each of them is one round trip (a prepare is
//! its own exchange before the first execution), which the round-trip test checks against a
//! proxy on the wire; on SQLite each is a call into the embedded library.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// The count shared by every connection of one [`crate::Database`]. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct StatementCounter(Arc<AtomicU64>);

impl StatementCounter {
    /// Statements sent so far, prepares included.
    pub(crate) fn sent(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The instrumentation to give one connection.
    pub(crate) fn instrumentation(&self) -> impl Instrumentation {
        let count = self.0.clone();
        move |event: InstrumentationEvent<'_>| {
            if matches!(
                event,
                InstrumentationEvent::StartQuery { .. } | InstrumentationEvent::CacheQuery { .. }
            ) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
