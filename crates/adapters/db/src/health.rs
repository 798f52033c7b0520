//! Readiness and monitoring figures.

use consign_ports::{StoreError, StoreStats};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;

use crate::connection::{AnyConnection, MIGRATIONS};
use crate::database::Database;
use crate::error::DbError;
use crate::schema::{capture_attempts, outbox, shipments};

fn pending_migrations(conn: &mut AnyConnection) -> Result<bool, DbError> {
    let pending = match conn {
        AnyConnection::Postgresql(pg) => pg.has_pending_migration(MIGRATIONS),
        AnyConnection::Sqlite(sqlite) => sqlite.has_pending_migration(MIGRATIONS),
    };
    pending.map_err(|e| DbError::Migration(e.to_string()))
}

impl Database {
    pub(crate) async fn check_ready(&self) -> Result<(), StoreError> {
        let pending = self.run(pending_migrations).await?;
        if pending {
            return Err(StoreError::Unavailable("migrations are not applied".into()));
        }
        Ok(())
    }

    pub(crate) async fn gather_stats(&self) -> Result<StoreStats, StoreError> {
        let (in_use, waiting, size) = self.pool_figures();
        let mut stats = self
            .run(|conn| {
                let attempts_by_state: Vec<(String, i64)> = capture_attempts::table
                    .group_by(capture_attempts::state)
                    .select((capture_attempts::state, count_star()))
                    .order(capture_attempts::state)
                    .load(conn)?;
                let shipments_needing_review: i64 = shipments::table
                    .filter(shipments::needs_review.eq(1))
                    .count()
                    .get_result(conn)?;
                let outbox_depth: i64 = outbox::table
                    .filter(outbox::state.ne("sent"))
                    .count()
                    .get_result(conn)?;
                Ok(StoreStats {
                    attempts_by_state,
                    shipments_needing_review,
                    outbox_depth,
                    ..StoreStats::default()
                })
            })
            .await?;
        stats.pool_in_use = in_use;
        stats.pool_waiting = waiting;
        stats.pool_size = size;
        Ok(stats)
    }
}
