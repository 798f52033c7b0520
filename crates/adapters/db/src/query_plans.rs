//! For tests: the statements a piece of work sends to SQLite, each with the plan SQLite makes
//! for it, so that a test can tell a read that searches an index from one that scans a table.

use std::sync::{Arc, Mutex, PoisonError};

use diesel::connection::InstrumentationEvent;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::connection::AnyConnection;
use crate::error::DbError;

/// One step of SQLite's `EXPLAIN QUERY PLAN`.
#[derive(QueryableByName)]
struct PlanStep {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// Makes the planner see `statistics` (rows for `sqlite_stat1`, as `ANALYZE` would record them
/// on a grown database) from the next statement on.
pub(crate) fn as_grown(conn: &mut AnyConnection, statistics: &str) -> Result<(), DbError> {
    diesel::sql_query("ANALYZE").execute(conn)?;
    diesel::sql_query(statistics).execute(conn)?;
    // Makes the connection read the statistics again.
    diesel::sql_query("ANALYZE sqlite_schema").execute(conn)?;
    Ok(())
}

/// Each statement `work` sent on `conn` (without its bound values), with the steps of its plan.
pub(crate) fn plans_of<T>(
    conn: &mut AnyConnection,
    work: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
) -> Result<Vec<(String, Vec<String>)>, DbError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(query.to_string());
        }
    });
    work(conn)?;
    let sent = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut plans = Vec::with_capacity(sent.len());
    for query in sent {
        let sql = query
            .split(" -- binds:")
            .next()
            .unwrap_or_default()
            .to_owned();
        let steps: Vec<PlanStep> =
            diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).load(conn)?;
        plans.push((sql, steps.into_iter().map(|step| step.detail).collect()));
    }
    Ok(plans)
}
