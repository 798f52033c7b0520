//! API keys, stored as SHA-256 hashes: the database never holds a usable key.

use async_trait::async_trait;
use consign_ports::{ApiKeyId, ApiKeyInfo, KeyStore, StoreError, Timestamp};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sha2::{Digest, Sha256};

use crate::database::{hex, Database};
use crate::error::DbError;
use crate::rows::ApiKeyRow;
use crate::schema::{api_keys, counters};

/// Keys are random with at least 128 bits, so a plain hash (no salt, no stretching) cannot be
/// reversed, and lookup by hash leaks nothing about the key.
fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

#[async_trait]
impl KeyStore for Database {
    async fn add_key(
        &self,
        key: &str,
        label: &str,
        now: Timestamp,
    ) -> Result<ApiKeyId, StoreError> {
        let hash = key_hash(key);
        let prefix: String = key.chars().take(8).collect();
        let label = label.to_owned();
        Ok(self
            .run_write(move |conn| {
                let inserted = conn.transaction(|conn| {
                    diesel::update(counters::table.find("api_key_id"))
                        .set(counters::value.eq(counters::value + 1))
                        .execute(conn)?;
                    let id: i64 = counters::table
                        .find("api_key_id")
                        .select(counters::value)
                        .first(conn)?;
                    diesel::insert_into(api_keys::table)
                        .values(ApiKeyRow {
                            id,
                            label: label.clone(),
                            prefix: prefix.clone(),
                            key_hash: hash.clone(),
                            created_at: now.0,
                            revoked_at: None,
                        })
                        .execute(conn)?;
                    Ok(ApiKeyId(id))
                });
                match inserted {
                    // Another instance stored the same key a moment ago: it is the same key.
                    Err(DbError::Query(DieselError::DatabaseError(
                        DatabaseErrorKind::UniqueViolation,
                        _,
                    ))) => Ok(ApiKeyId(
                        api_keys::table
                            .filter(api_keys::key_hash.eq(&hash))
                            .select(api_keys::id)
                            .first(conn)?,
                    )),
                    other => other,
                }
            })
            .await?)
    }

    async fn verify_key(&self, key: &str) -> Result<Option<ApiKeyId>, StoreError> {
        let hash = key_hash(key);
        Ok(self
            .run_short_read(move |conn| {
                Ok(api_keys::table
                    .filter(api_keys::key_hash.eq(&hash))
                    .filter(api_keys::revoked_at.is_null())
                    .select(api_keys::id)
                    .first::<i64>(conn)
                    .optional()?
                    .map(ApiKeyId))
            })
            .await?)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        Ok(self
            .run(|conn| {
                let rows: Vec<ApiKeyRow> = api_keys::table
                    .order(api_keys::id.asc())
                    .select(ApiKeyRow::as_select())
                    .load(conn)?;
                Ok(rows
                    .into_iter()
                    .map(|r| ApiKeyInfo {
                        id: ApiKeyId(r.id),
                        label: r.label,
                        prefix: r.prefix,
                        created_at: Timestamp(r.created_at),
                        revoked_at: r.revoked_at.map(Timestamp),
                    })
                    .collect())
            })
            .await?)
    }

    async fn revoke_key(&self, id: ApiKeyId, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self
            .run_write(move |conn| {
                let changed = diesel::update(
                    api_keys::table
                        .find(id.0)
                        .filter(api_keys::revoked_at.is_null()),
                )
                .set(api_keys::revoked_at.eq(Some(now.0)))
                .execute(conn)?;
                Ok(changed == 1)
            })
            .await?)
    }
}
