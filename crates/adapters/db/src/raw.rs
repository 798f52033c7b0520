//! Statements MultiConnection's DSL cannot express (`RETURNING`), written once with PostgreSQL's
//! `$n` placeholders and run on either backend (SQLite reads `?n` the same way).

/// `$1, $2 ...` as SQLite's numbered `?1, ?2 ...`.
pub(crate) fn sqlite_placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Runs `sql` (with `$n` placeholders) on whichever backend `conn` is, binding with `binds` (a
/// closure-like expression over the query named `$q`), and answers at most one row.
macro_rules! returning_one {
    ($conn:expr, $sql:expr, |$q:ident| $binds:expr) => {{
        use diesel::OptionalExtension;
        use diesel::RunQueryDsl;
        match $conn {
            $crate::connection::AnyConnection::Postgresql(c) => {
                let $q = diesel::sql_query($sql);
                $binds.get_result(c).optional()
            }
            $crate::connection::AnyConnection::Sqlite(c) => {
                let $q = diesel::sql_query($crate::raw::sqlite_placeholders($sql));
                $binds.get_result(c).optional()
            }
        }
    }};
}

pub(crate) use returning_one;
