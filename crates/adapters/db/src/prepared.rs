//! Hand-written statements that Diesel prepares once per connection, on either backend.
//!
//! `diesel::sql_query` never caches its statement, so the database parses and plans it on every
//! run; for the saga's large `WITH` statements that was a visible share of the database's CPU.
//! [`Prepared`] carries the same text with `$n` placeholders, binds each value once (where it
//! first appears; its later placeholders name that bind), and lets Diesel's statement cache
//! keep it prepared.
//!
//! Each statement is its own type ([`statement!`]), so the cache finds it by that type: keyed
//! by its text instead, every run built the whole text again (placeholders renumbered), copied
//! it into a key and hashed it, about a tenth of the server's CPU per request.

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

/// One statement's text, as a type of its own: made by [`statement!`], one type per place the
/// macro is used, so two statements can never share a cache entry. The text holds no `$` other
/// than placeholders (no dollar quoting, no `$` in literals), and each placeholder stands for a
/// value of the same SQL type on every run (the cache keeps the types it was prepared with).
pub(crate) trait Statement: 'static {
    /// The text, with `$1 ... $n` placeholders.
    const SQL: &'static str;

    /// The text split at its placeholders, once per process: every run binds its values
    /// without searching the text again.
    fn layout() -> &'static Layout;
}

/// The [`Statement`] for a text: `statement!("UPDATE ... WHERE id = $1")` or
/// `statement!(A_CONSTANT)`.
macro_rules! statement {
    ($sql:expr) => {{
        struct Text;
        impl $crate::prepared::Statement for Text {
            const SQL: &'static str = $sql;

            fn layout() -> &'static $crate::prepared::Layout {
                static LAYOUT: std::sync::OnceLock<$crate::prepared::Layout> =
                    std::sync::OnceLock::new();
                LAYOUT.get_or_init(|| $crate::prepared::Layout::of(Self::SQL))
            }
        }
        Text
    }};
}
pub(crate) use statement;

/// A statement's text split at its placeholders: the text before each placeholder and what
/// stands there, then the rest.
pub(crate) struct Layout {
    parts: Vec<(&'static str, Placeholder)>,
    rest: &'static str,
    /// The text has a `$` without a number after it.
    malformed: bool,
}

/// What one placeholder of the text becomes when the statement runs.
enum Placeholder {
    /// The first place value `n` (from 1) appears: it is bound here, and the backend numbers
    /// it by the order of binding.
    Bind(usize),
    /// A later place of a value already bound: the number that bind got, written as text,
    /// so the value is sent and converted once.
    Repeat(Repeat),
}

/// A repeated placeholder's number in binding order, in each backend's spelling.
struct Repeat {
    /// `$k`.
    postgres: String,
    /// `?k`: a later bare `?` takes the next number, so binding in order of first appearance
    /// keeps both in step.
    sqlite: String,
}

impl Layout {
    pub(crate) fn of(sql: &'static str) -> Layout {
        let mut parts = Vec::new();
        // Value numbers in the order they are first bound.
        let mut bound: Vec<usize> = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let Ok(number) = rest[at + 1..at + 1 + digits].parse::<usize>() else {
                return Layout {
                    parts,
                    rest,
                    malformed: true,
                };
            };
            let placeholder = match bound.iter().position(|&n| n == number) {
                Some(index) => Placeholder::Repeat(Repeat {
                    postgres: format!("${}", index + 1),
                    sqlite: format!("?{}", index + 1),
                }),
                None => {
                    bound.push(number);
                    Placeholder::Bind(number)
                }
            };
            parts.push((&rest[..at], placeholder));
            rest = &rest[at + 1 + digits..];
        }
        Layout {
            parts,
            rest,
            malformed: false,
        }
    }
}

/// A statement with `$1 ... $n` placeholders and the values they stand for. Its rows are read
/// by column name (`Untyped`, into a `QueryableByName` type) unless [`Prepared::by_position`]
/// names their SQL types.
pub(crate) struct Prepared<'a, S, ST = Untyped> {
    statement: std::marker::PhantomData<(S, ST)>,
    params: Vec<Param<'a>>,
}

impl<'a, S: Statement> Prepared<'a, S> {
    pub(crate) fn new(_statement: S, params: Vec<Param<'a>>) -> Self {
        Prepared {
            statement: std::marker::PhantomData,
            params,
        }
    }

    /// The same statement, its rows read by position as `ST` (a tuple of SQL types, in the
    /// order of the statement's columns) into a `Queryable` type. Reading by name looks every
    /// field's column up among the row's names, comparing text: for a shipment's 21 columns
    /// that was about 5 % of the instructions of a create-shipment.
    pub(crate) fn by_position<ST>(self) -> Prepared<'a, S, ST> {
        Prepared {
            statement: std::marker::PhantomData,
            params: self.params,
        }
    }
}

impl<'a, S: Statement, ST> Prepared<'a, S, ST> {
    /// Walks the text: the first `$n` of each value becomes a bind of the n-th value, through
    /// `bind`, and every later `$n` of it the number that bind got (`repeat` picks the
    /// backend's spelling): a value used in five places is sent and converted once.
    fn walk<'b, DB: Backend>(
        &'b self,
        mut out: AstPass<'_, 'b, DB>,
        spelling: fn(&Repeat) -> &str,
        bind: impl Fn(&mut AstPass<'_, 'b, DB>, &'b Param<'a>) -> QueryResult<()>,
    ) -> QueryResult<()> {
        let layout = S::layout();
        if layout.malformed {
            return Err(placeholder_error(S::SQL));
        }
        for (text, placeholder) in &layout.parts {
            out.push_sql(text);
            match placeholder {
                Placeholder::Bind(number) => {
                    let param = number
                        .checked_sub(1)
                        .and_then(|i| self.params.get(i))
                        .ok_or_else(|| placeholder_error(S::SQL))?;
                    bind(&mut out, param)?;
                }
                Placeholder::Repeat(repeat) => out.push_sql(spelling(repeat)),
            }
        }
        out.push_sql(layout.rest);
        Ok(())
    }
}

fn postgres_spelling(repeat: &Repeat) -> &str {
    &repeat.postgres
}

fn sqlite_spelling(repeat: &Repeat) -> &str {
    &repeat.sqlite
}

impl<S: Statement, ST> QueryFragment<Pg> for Prepared<'_, S, ST> {
    // Fixed text: always safe to keep prepared, without walking it to find out.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }

    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(out, postgres_spelling, |out, param| match param {
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

impl<S: Statement, ST> QueryFragment<Sqlite> for Prepared<'_, S, ST> {
    fn is_safe_to_cache_prepared(&self, _backend: &Sqlite) -> QueryResult<bool> {
        Ok(true)
    }

    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.walk(out, sqlite_spelling, |out, param| match param {
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
pub(crate) fn returning_one<U, S: Statement>(
    conn: &mut AnyConnection,
    statement: S,
    params: Vec<Param<'_>>,
) -> QueryResult<Option<U>>
where
    U: QueryableByName<Pg> + QueryableByName<Sqlite> + 'static,
{
    let query = Prepared::new(statement, params);
    match conn {
        AnyConnection::Postgresql(c) => query.get_result(c).optional(),
        AnyConnection::Sqlite(c) => query.get_result(c).optional(),
    }
}

/// Runs a statement that answers no rows (`UPDATE`, `INSERT`) and says how many rows it changed:
/// Diesel's own `UPDATE`s are never kept prepared (their text may vary with the values), so the
/// writes every shipment makes are written here once instead.
pub(crate) fn execute<S: Statement>(
    conn: &mut AnyConnection,
    statement: S,
    params: Vec<Param<'_>>,
) -> QueryResult<usize> {
    let query = Prepared::new(statement, params);
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

impl<S: Statement, ST> QueryId for Prepared<'_, S, ST> {
    // The statement's own type: the cache finds it without building its text (the same text
    // read by position is the same prepared statement).
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Statement, ST> Query for Prepared<'_, S, ST> {
    type SqlType = ST;
}

impl<S: Statement, ST> RunQueryDsl<PgConnection> for Prepared<'_, S, ST> {}

impl<S: Statement, ST> RunQueryDsl<SqliteConnection> for Prepared<'_, S, ST> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_is_bound_once_and_its_later_placeholders_name_that_bind() {
        let ids = [7_i64, 8];
        let query = Prepared::new(
            statement!("SELECT $2, $1 WHERE $2 = ANY($3)"),
            vec![Param::Integer(1), Param::BigInt(7), Param::BigInts(&ids)],
        );
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.starts_with("SELECT $1, $2 WHERE $1 = ANY($3)"), "{sql}");
        assert!(sql.contains("binds: [7, 1, [7, 8]]"), "{sql}");
        let query = Prepared::new(
            statement!("SELECT $2, $1 WHERE $2 = $1 OR $3 = $2"),
            vec![Param::Integer(1), Param::BigInt(7), Param::Integer(9)],
        );
        let sql = diesel::debug_query::<Sqlite, _>(&query).to_string();
        assert!(
            sql.starts_with("SELECT ?, ? WHERE ?1 = ?2 OR ? = ?1"),
            "{sql}"
        );
        assert!(sql.contains("binds: [7, 1, 9]"), "{sql}");
    }

    #[test]
    fn sqlite_reads_a_repeated_value_from_its_one_bind() {
        use diesel::Connection;
        #[derive(QueryableByName, Debug, PartialEq)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            a: i64,
            #[diesel(sql_type = BigInt)]
            b: i64,
            #[diesel(sql_type = BigInt)]
            c: i64,
            #[diesel(sql_type = BigInt)]
            d: i64,
        }
        let mut conn = AnyConnection::Sqlite(
            SqliteConnection::establish(":memory:").expect("an in-memory database"),
        );
        let row: Option<Row> = returning_one(
            &mut conn,
            statement!("SELECT $2 AS a, $1 AS b, $2 + $3 AS c, $3 * 10 + $1 AS d"),
            vec![Param::BigInt(1), Param::BigInt(20), Param::BigInt(300)],
        )
        .expect("the statement runs");
        assert_eq!(
            row,
            Some(Row {
                a: 20,
                b: 1,
                c: 320,
                d: 3001
            })
        );
    }

    #[test]
    fn each_statement_is_kept_under_a_type_of_its_own() {
        fn cache_id<S: Statement>(_: &S) -> Option<std::any::TypeId> {
            Prepared::<S>::query_id()
        }
        // The same text twice still makes two types: a cache entry is never shared by accident.
        let first = statement!("SELECT $1");
        let second = statement!("SELECT $1");
        assert!(
            cache_id(&first).is_some(),
            "found by type, not by building its text"
        );
        assert_ne!(cache_id(&first), cache_id(&second));
        let query = Prepared::new(first, vec![Param::Integer(1)]);
        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&query, &Pg).unwrap_or(false));
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_not_a_panic() {
        let query = Prepared::new(statement!("SELECT $2"), vec![Param::Integer(1)]);
        let error = query
            .to_sql(&mut diesel::pg::PgQueryBuilder::default(), &Pg)
            .unwrap_err();
        assert!(error.to_string().contains("placeholder without a value"));
        let query = Prepared::new(statement!("SELECT $x"), vec![Param::Integer(1)]);
        let error = query
            .to_sql(&mut diesel::pg::PgQueryBuilder::default(), &Pg)
            .unwrap_err();
        assert!(error.to_string().contains("placeholder without a value"));
    }
}
