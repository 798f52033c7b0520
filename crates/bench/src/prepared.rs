//! Statements kept prepared, as Consign keeps its own (SQLite's ceiling, the floor server on
//! PostgreSQL): Diesel's `sql_query` is parsed and planned again on every run, which would make
//! them pay a cost Consign does not.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// One statement's text, a type of its own (so Diesel's cache finds it by type); each `?` in
/// it stands for an integer.
pub trait Sql: 'static {
    const SQL: &'static str;
}

/// A [`Sql`] type for a text: `sql!(Name, "UPDATE ... WHERE id = ?")` (each `?` becomes the
/// backend's own placeholder).
macro_rules! sql {
    ($name:ident, $text:expr) => {
        struct $name;
        impl $crate::prepared::Sql for $name {
            const SQL: &'static str = $text;
        }
    };
}
pub(crate) use sql;

/// A statement with its values, kept prepared by the connection's statement cache.
pub struct Stmt<S: Sql> {
    values: Vec<i64>,
    text: PhantomData<S>,
}

/// Statement `S` with `values` for its placeholders, in order.
pub fn stmt<S: Sql>(values: Vec<i64>) -> Stmt<S> {
    Stmt {
        values,
        text: PhantomData,
    }
}

impl<S: Sql> QueryId for Stmt<S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Sql, DB> QueryFragment<DB> for Stmt<S>
where
    DB: Backend + HasSqlType<BigInt>,
    i64: ToSql<BigInt, DB>,
{
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }

    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let mut parts = S::SQL.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        let mut values = self.values.iter();
        for part in parts {
            let value = values.next().ok_or_else(|| {
                diesel::result::Error::QueryBuilderError(
                    format!("too few values: {}", S::SQL).into(),
                )
            })?;
            out.push_bind_param::<BigInt, _>(value)?;
            out.push_sql(part);
        }
        Ok(())
    }
}

impl<S: Sql> Query for Stmt<S> {
    type SqlType = Untyped;
}

impl<S: Sql, Conn> RunQueryDsl<Conn> for Stmt<S> {}
