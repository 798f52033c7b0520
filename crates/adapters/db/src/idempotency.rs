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
/// A claim given up without a final answer (a 503, say): the key still belongs to its request,
/// whose fingerprint is kept, so the same request takes it again and another is refused.
const RELEASED: &str = "released";

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
        if state == RELEASED || updated_at < now.0 - takeover_after {
            // The request that claimed it gave it up, or died with its process: this one takes
            // over.
            diesel::update(this())
                .set((keys::state.eq(RUNNING), keys::updated_at.eq(now.0)))
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
                diesel::update(
                    keys::table
                        .filter(keys::api_key_id.eq(api_key.0))
                        .filter(keys::request_key.eq(&key))
                        .filter(keys::state.eq(RUNNING)),
                )
                .set(keys::state.eq(RELEASED))
                .execute(conn)?;
                Ok(())
            })
            .await?)
    }

    async fn purge_requests(&self, before: Timestamp) -> Result<usize, StoreError> {
        Ok(self
            .run_write(move |conn| {
                // Not a claim taken over lately: its request may still be running.
                let running_lately = keys::state.eq(RUNNING).and(keys::updated_at.ge(before.0));
                Ok(diesel::delete(
                    keys::table
                        .filter(keys::created_at.lt(before.0))
                        .filter(diesel::dsl::not(running_lately)),
                )
                .execute(conn)?)
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use consign_ports::{ApiKeyId, IdempotencyBegin, IdempotencyStore, Timestamp};

    use crate::testing::{postgres_required, Throwaway};
    use crate::Database;

    const HOUR: i64 = 3_600_000;

    /// A key given up without a final answer (a 503) still belongs to its request: the same
    /// request takes it again, another is refused, on both backends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_released_key_is_taken_again_by_its_request_only() {
        let sqlite = Throwaway::sqlite();
        let postgres = Throwaway::postgres();
        if let Err(why) = &postgres {
            assert!(!postgres_required(), "{why}");
        }
        for db in std::iter::once(&sqlite).chain(postgres.as_ref().ok()) {
            let store = Database::open(&db.config).expect("open");
            let (api, key) = (ApiKeyId(7), "k-503");
            let begin = |fingerprint: &'static str| {
                store.begin_request(api, key, fingerprint, Timestamp(10), 60_000)
            };
            assert_eq!(begin("fp-1").await.unwrap(), IdempotencyBegin::New);
            store.release_request(api, key).await.unwrap();
            assert_eq!(
                begin("fp-2").await.unwrap(),
                IdempotencyBegin::Mismatch,
                "{}",
                db.url
            );
            assert_eq!(begin("fp-1").await.unwrap(), IdempotencyBegin::New);
            assert_eq!(
                begin("fp-1").await.unwrap(),
                IdempotencyBegin::InFlight,
                "{}: taken again, it is running",
                db.url
            );
        }
    }

    /// The purge of old keys leaves a claim taken over lately: its request may still be
    /// running, and a retry must meet it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_purge_leaves_a_claim_taken_over_lately() {
        let file = Throwaway::sqlite();
        let store = Database::open(&file.config).expect("open");
        let (api, key) = (ApiKeyId(7), "k-old");
        let begin = |at: i64| store.begin_request(api, key, "fp", Timestamp(at), 60_000);
        assert_eq!(begin(0).await.unwrap(), IdempotencyBegin::New);
        // Its process died; a retry takes it over 49 hours later.
        assert_eq!(begin(49 * HOUR).await.unwrap(), IdempotencyBegin::New);
        store
            .purge_requests(Timestamp(49 * HOUR - 24 * HOUR))
            .await
            .unwrap();
        assert_eq!(
            begin(49 * HOUR + 1).await.unwrap(),
            IdempotencyBegin::InFlight
        );
    }
}
