//! Readiness and monitoring figures.

use consign_ports::{StoreError, StoreStats};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_migrations::MigrationHarness;

use crate::attempts::OPEN_ATTEMPT;
use crate::connection::{AnyConnection, MIGRATIONS};
use crate::database::Database;
use crate::error::DbError;
use crate::outbox::{PENDING, REFUSED, SENDING};
use crate::schema::{capture_attempts, outbox, shipments};

/// A shipment whose capture needs review, as literals: the predicate of the index of those
/// shipments (migration 000008), which a database uses only for a condition it can prove covers
/// the index's rows, as a condition on bound values is not.
const NEEDS_REVIEW: &str = "shipments.needs_review = 1";

/// Open refund attempts by state, an accepted one still settling as `settling`: the condition
/// is the predicate of the index of open refund attempts (migration 000005), as literals.
const OPEN_REFUNDS_BY_STATE: &str = "SELECT CASE WHEN state = 'pending' AND provider_reference \
     IS NOT NULL THEN 'settling' ELSE state END AS state, count(*) AS n FROM refund_attempts \
     WHERE state IN ('pending', 'unknown', 'needs_review') GROUP BY 1 ORDER BY 1";

/// One row of [`OPEN_REFUNDS_BY_STATE`].
#[derive(QueryableByName)]
struct StateCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

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
        let mut stats = self.run(store_figures).await?;
        stats.pool_in_use = in_use;
        stats.pool_waiting = waiting;
        stats.pool_size = size;
        Ok(stats)
    }
}

/// The store's own figures: each read searches an index of what is open (migrations 000007 and
/// 000008, the conditions as literals) or the outbox's index by state, so what a read costs is
/// the work in flight, not the tables' history. Counting every attempt by state, and every
/// shipment for the review flag, took 60-90 ms and about 3 MiB of the server's memory per read
/// at the benchmark's 200,000 shipments (docs/benchmarks.md), and grew with them.
fn store_figures(conn: &mut AnyConnection) -> Result<StoreStats, DbError> {
    let open_attempts_by_state: Vec<(String, i64)> = capture_attempts::table
        .filter(sql::<Bool>(OPEN_ATTEMPT))
        .group_by(capture_attempts::state)
        .select((capture_attempts::state, count_star()))
        .order(capture_attempts::state)
        .load(conn)?;
    let shipments_needing_review: i64 = shipments::table
        .filter(sql::<Bool>(NEEDS_REVIEW))
        .count()
        .get_result(conn)?;
    // Sent messages are most of the table: the states read are the index's first column.
    let outbox_by_state: Vec<(String, i64)> = outbox::table
        .filter(outbox::state.eq_any([PENDING, SENDING, REFUSED]))
        .group_by(outbox::state)
        .select((outbox::state, count_star()))
        .load(conn)?;
    let outbox_in = |states: &[&str]| -> i64 {
        outbox_by_state
            .iter()
            .filter(|(state, _)| states.contains(&state.as_str()))
            .map(|(_, n)| n)
            .sum()
    };
    let open_refunds_by_state = diesel::sql_query(OPEN_REFUNDS_BY_STATE)
        .load::<StateCount>(conn)?
        .into_iter()
        .map(|row| (row.state, row.n))
        .collect();
    Ok(StoreStats {
        open_attempts_by_state,
        shipments_needing_review,
        open_refunds_by_state,
        outbox_depth: outbox_in(&[PENDING, SENDING]),
        outbox_refused: outbox_in(&[REFUSED]),
        ..StoreStats::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_plans::{as_grown, plans_of};
    use crate::testing::Throwaway;

    /// What `ANALYZE` would record on a grown database: nearly every attempt settled, nearly
    /// every shipment reviewed long ago or never, nearly every message sent. An index over
    /// every row's state looks useless to the planner then.
    const GROWN_TABLES: &str = "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES \
         ('capture_attempts', 'capture_attempts_by_order_state', '131043 7 7'), \
         ('shipments', 'sqlite_autoindex_shipments_1', '131043 7 1'), \
         ('outbox', 'outbox_by_due', '131043 65521 1'), \
         ('refund_attempts', 'refund_attempts_by_state', '131043 43681 1')";

    /// A scrape reads the store's figures at most every few seconds, from tables that only
    /// grow: every read must search an index of what is open, and scan no table.
    #[tokio::test]
    async fn the_store_figures_search_what_is_open_and_scan_no_table() {
        let file = Throwaway::sqlite();
        let db = Database::open(&file.config).expect("open");
        let plans = db
            .run_write(|conn| {
                as_grown(conn, GROWN_TABLES)?;
                let plans = plans_of(conn, store_figures)?;
                Ok::<_, DbError>(
                    plans
                        .into_iter()
                        .map(|(_, steps)| steps)
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .expect("the reads' plans");
        assert_eq!(plans.len(), 4, "{plans:?}");
        let steps: Vec<&String> = plans.iter().flatten().collect();
        for index in [
            "capture_attempts_open",
            "shipments_needing_review",
            "outbox_by_due",
            "refund_attempts_by_state",
        ] {
            assert!(
                steps.iter().any(|step| step.contains(index)),
                "{index} unused: {plans:?}"
            );
        }
        // A partial index is read whole, and holds only what is open.
        let partial = [
            "capture_attempts_open",
            "shipments_needing_review",
            "refund_attempts_one_open",
        ];
        assert!(
            steps
                .iter()
                .filter(|step| step.starts_with("SCAN"))
                .all(|step| partial.iter().any(|index| step.contains(index))),
            "{plans:?}"
        );
    }
}
