//! Client idempotency records: one row per (API key, key), claimed while running and holding the
//! final answer once done.

use async_trait::async_trait;
use consign_ports::{
    ApiKeyId, IdempotencyBegin, IdempotencyStore, StoreError, StoredAnswer, Timestamp,
};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::connection::AnyConnection;
use crate::database::Database;
use crate::error::DbError;
use crate::schema::idempotency_keys as keys;

const RUNNING: &str = "running";
const DONE: &str = "done";

type Record = (
    String,
    String,
    Option<i32>,
    Option<String>,
    Option<String>,
    i64,
);

fn claim(
    conn: &mut AnyConnection,
    api_key: i64,
    key: &str,
    fingerprint: &str,
    now: Timestamp,
    takeover_after: i64,
) -> Result<IdempotencyBegin, DbError> {
    conn.transaction(|conn| {
        let this = || {
            keys::table
                .filter(keys::api_key_id.eq(api_key))
                .filter(keys::request_key.eq(key))
        };
        // A write first: SQLite takes its write lock before reading, so two claims queue.
        diesel::update(this())
            .set(keys::updated_at.eq(keys::updated_at))
            .execute(conn)?;
        let found: Option<Record> = this()
            .select((
                keys::fingerprint,
                keys::state,
                keys::status,
                keys::content_type,
                keys::body,
                keys::updated_at,
            ))
            .first(conn)
            .optional()?;
        let Some((stored_fingerprint, state, status, content_type, body, updated_at)) = found
        else {
            diesel::insert_into(keys::table)
                .values((
                    keys::api_key_id.eq(api_key),
                    keys::request_key.eq(key),
                    keys::fingerprint.eq(fingerprint),
                    keys::state.eq(RUNNING),
                    keys::created_at.eq(now.0),
                    keys::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            return Ok(IdempotencyBegin::New);
        };
        if stored_fingerprint != fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        if state == DONE {
            return Ok(IdempotencyBegin::Replay(StoredAnswer {
                status: u16::try_from(status.unwrap_or(500)).unwrap_or(500),
                content_type: content_type.unwrap_or_else(|| "application/json".into()),
                body: body.unwrap_or_default(),
            }));
        }
        if updated_at < now.0 - takeover_after {
            // The request that claimed it died with its process: this one takes over.
            diesel::update(this())
                .set(keys::updated_at.eq(now.0))
                .execute(conn)?;
            return Ok(IdempotencyBegin::New);
        }
        Ok(IdempotencyBegin::InFlight)
    })
}

#[async_trait]
impl IdempotencyStore for Database {
    async fn begin_request(
        &self,
        api_key: ApiKeyId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        takeover_after_millis: i64,
    ) -> Result<IdempotencyBegin, StoreError> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        Ok(self
            .run_write(move |conn| {
                let attempt = |conn: &mut AnyConnection| {
                    claim(
                        conn,
                        api_key.0,
                        &key,
                        &fingerprint,
                        now,
                        takeover_after_millis,
                    )
                };
                match attempt(conn) {
                    // Two first claims at once: the loser finds the winner's row on a second look.
                    Err(DbError::Query(DieselError::DatabaseError(
                        DatabaseErrorKind::UniqueViolation,
                        _,
                    ))) => attempt(conn),
                    other => other,
                }
            })
            .await?)
    }

    async fn finish_request(
        &self,
        api_key: ApiKeyId,
        key: &str,
        answer: StoredAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        Ok(self
            .run_write(move |conn| {
                diesel::update(
                    keys::table
                        .filter(keys::api_key_id.eq(api_key.0))
                        .filter(keys::request_key.eq(&key)),
                )
                .set((
                    keys::state.eq(DONE),
                    keys::status.eq(Some(i32::from(answer.status))),
                    keys::content_type.eq(Some(&answer.content_type)),
                    keys::body.eq(Some(&answer.body)),
                    keys::updated_at.eq(now.0),
                ))
                .execute(conn)?;
                Ok(())
            })
            .await?)
    }

    async fn release_request(&self, api_key: ApiKeyId, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        Ok(self
            .run_write(move |conn| {
                diesel::delete(
                    keys::table
                        .filter(keys::api_key_id.eq(api_key.0))
                        .filter(keys::request_key.eq(&key))
                        .filter(keys::state.eq(RUNNING)),
                )
                .execute(conn)?;
                Ok(())
            })
            .await?)
    }

    async fn purge_requests(&self, before: Timestamp) -> Result<usize, StoreError> {
        Ok(self
            .run_write(move |conn| {
                Ok(
                    diesel::delete(keys::table.filter(keys::created_at.lt(before.0)))
                        .execute(conn)?,
                )
            })
            .await?)
    }
}
