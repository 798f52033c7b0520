//! # consign-db
//!
//! Diesel persistence for Consign: [`Database`] implements the order store and key store ports
//! on PostgreSQL (production) and SQLite (the embedded default) with one set of queries over a
//! `MultiConnection`. Migrations are embedded and applied by [`Database::open`].
//!
//! Each saga step is one short transaction; the order row is written first, which locks it on
//! PostgreSQL and takes the write lock on SQLite, and guarded updates plus `CHECK` constraints
//! keep `allocated <= quantity` whatever the concurrency. On PostgreSQL the saga's writes are one
//! prepared statement each (round trips, not queries, bound its throughput); on SQLite one writer
//! thread commits queued writes together.
#![deny(missing_docs)]

mod attempts;
mod changes;
mod config;
mod connection;
mod consistent_read;
mod database;
mod deletions;
mod dump;
mod error;
mod hand_settlements;
mod health;
mod idempotency;
mod kept_settle;
mod keys;
mod line_moves;
mod listing;
mod orders;
mod outbox;
mod persist;
mod postgres;
mod prepared;
#[cfg(test)]
mod query_plans;
mod reservation;
mod reserved;
mod retry;
mod return_store;
mod returns;
mod rows;
mod schema;
mod shipments;
mod snapshots;
mod statements;
mod stop;
mod store;
mod workflow;
mod writer;

pub use config::{postgres_connection_url, Backend, DbConfig};
pub use database::Database;
pub use error::DbError;
pub use stop::LogCopy;
pub use writer::WAL_AUTOCHECKPOINT_PAGES;

#[cfg(feature = "test-support")]
pub mod testing;
