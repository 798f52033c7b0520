//! Hand-written statements that Diesel prepares once per connection, on either backend.
//!
//! `diesel::sql_query` never caches its statement, so the database parses and plans it on every
//! run; for the saga's large `WITH` statements that was a visible share of the database's CPU.
//! [`Prepared`] carries the same text with `$n` placeholders, binds each placeholder where it
//! appears, and lets Diesel's statement cache keep it prepared (keyed by its text).

use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{
    OptionalExtension, PgConnection, QueryResult, QueryableByName, RunQueryDsl, SqliteConnection,
};

use crate::connection::AnyConnection;

/// One bound value, with its SQL type.
pub(crate) enum Param<'a> {
    BigInt(i64),
    Integer(i32),
    Text(&'a str),
    NullableBigInt(Option<i64>),
    NullableInteger(Option<i32>),
    NullableText(Option<&'a str>),
    BigInts(&'a [i64]),
    Integers(&'a [i32]),
}

/// A statement with `$1 ... $n` placeholders and the values they stand for. The text holds no
/// other `$` (no dollar quoting, no `$` in literals): every `$` starts a placeholder.
pub(crate) struct Prepared<'a> {
    sql: &'static str,
    params: Vec<Param<'a>>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(sql: &'static str, params: Vec<Param<'a>>) -> Self {
        Prepared { sql, params }
    }
}

impl<'a> Prepared<'a> {
    /// Walks the text: each `$n` becomes a bind of the n-th value at that place, through `bind`
    /// (Diesel numbers placeholders in the order values are bound, so a value used twice is
    /// bound twice).
    fn walk<'b, DB: Backend>(
        &'b self,
        mut out: AstPass<'_, 'b, DB>,
        bind: impl Fn(&mut AstPass<'_, 'b, DB>, &'b Param<'a>) -> QueryResult<()>,
    ) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let index: usize = rest[at + 1..at + 1 + digits]
                .parse()
                .map_err(|_| placeholder_error(self.sql))?;
            let param = index
                .checked_sub(1)
                .and_then(|i| self.params.get(i))
                .ok_or_else(|| placeholder_error(self.sql))?;
            bind(&mut out, param)?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(out, |out, param| match param {
            Param::BigInt(v) => out.push_bind_param::<BigInt, _>(v),
            Param::Integer(v) => out.push_bind_param::<Integer, _>(v),
            Param::Text(v) => out.push_bind_param::<Text, _>(*v),
            Param::NullableBigInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v),
            Param::NullableInteger(v) => out.push_bind_param::<Nullable<Integer>, _>(v),
            Param::NullableText(v) => out.push_bind_param::<Nullable<Text>, _>(v),
            Param::BigInts(v) => out.push_bind_param::<Array<BigInt>, _>(*v),
            Param::Integers(v) => out.push_bind_param::<Array<Integer>, _>(*v),
        })
    }
}

impl QueryFragment<Sqlite> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.walk(out, |out, param| match param {
            Param::BigInt(v) => out.push_bind_param::<BigInt, _>(v),
            Param::Integer(v) => out.push_bind_param::<Integer, _>(v),
            Param::Text(v) => out.push_bind_param::<Text, _>(*v),
            Param::NullableBigInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v),
            Param::NullableInteger(v) => out.push_bind_param::<Nullable<Integer>, _>(v),
            Param::NullableText(v) => out.push_bind_param::<Nullable<Text>, _>(v),
            Param::BigInts(_) | Param::Integers(_) => Err(
                diesel::result::Error::QueryBuilderError("SQLite has no array values".into()),
            ),
        })
    }
}

/// Runs a statement that answers at most one row (`... RETURNING` with named columns) on
/// whichever backend `conn` is: the statements `MultiConnection`'s DSL cannot express.
pub(crate) fn returning_one<U>(
    conn: &mut AnyConnection,
    sql: &'static str,
    params: Vec<Param<'_>>,
) -> QueryResult<Option<U>>
where
    U: QueryableByName<Pg> + QueryableByName<Sqlite> + 'static,
{
    let query = Prepared::new(sql, params);
    match conn {
        AnyConnection::Postgresql(c) => query.get_result(c).optional(),
        AnyConnection::Sqlite(c) => query.get_result(c).optional(),
    }
}

/// Runs a statement that answers no rows (`UPDATE`, `INSERT`) and says how many rows it changed:
/// Diesel's own `UPDATE`s are never kept prepared (their text may vary with the values), so the
/// writes every shipment makes are written here once instead.
pub(crate) fn execute(
    conn: &mut AnyConnection,
    sql: &'static str,
    params: Vec<Param<'_>>,
) -> QueryResult<usize> {
    let query = Prepared::new(sql, params);
    match conn {
        AnyConnection::Postgresql(c) => query.execute(c),
        AnyConnection::Sqlite(c) => query.execute(c),
    }
}

fn placeholder_error(sql: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        format!(
            "placeholder without a value in: {}",
            sql.chars().take(80).collect::<String>()
        )
        .into(),
    )
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // No type-level id: the statement cache keys it by its text, which is fixed per statement.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for Prepared<'_> {}

impl RunQueryDsl<SqliteConnection> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_placeholder_binds_its_value_where_it_appears() {
        let ids = [7_i64, 8];
        let query = Prepared::new(
            "SELECT $2, $1 WHERE $2 = ANY($3)",
            vec![Param::Integer(1), Param::BigInt(7), Param::BigInts(&ids)],
        );
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.starts_with("SELECT $1, $2 WHERE $3 = ANY($4)"), "{sql}");
        assert!(sql.contains("binds: [7, 1, 7, [7, 8]]"), "{sql}");
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_not_a_panic() {
        let query = Prepared::new("SELECT $2", vec![Param::Integer(1)]);
        let error = query
            .to_sql(&mut diesel::pg::PgQueryBuilder::default(), &Pg)
            .unwrap_err();
        assert!(error.to_string().contains("placeholder without a value"));
    }
}
