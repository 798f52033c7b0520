//! Every backend the contract runs on.

use consign_db::testing::{postgres_required, Throwaway};
use consign_db::Database;
use consign_domain::Currency;

pub fn sek() -> Currency {
    "SEK".parse().unwrap()
}

pub struct TestDb {
    pub name: &'static str,
    pub db: Database,
    pub throwaway: Throwaway,
}

/// Dropping a `TestDb` removes its database. Having `Drop` also makes a `move` closure capture
/// the whole value, not only the fields it uses, so the database lives as long as the test.
impl Drop for TestDb {
    fn drop(&mut self) {}
}

impl TestDb {
    pub async fn raw_key_hashes(&self) -> Vec<String> {
        self.throwaway.key_hashes()
    }
}

fn open(name: &'static str, throwaway: Throwaway) -> TestDb {
    let db = Database::open(&throwaway.config).expect("open throwaway database");
    TestDb {
        name,
        db,
        throwaway,
    }
}

/// SQLite always; PostgreSQL when reachable (required under CI).
pub async fn backends() -> Vec<TestDb> {
    let mut all = vec![open("sqlite", Throwaway::sqlite())];
    match Throwaway::postgres() {
        Ok(pg) => all.push(open("postgres", pg)),
        Err(why) if postgres_required() => panic!("CI=true but PostgreSQL is unreachable: {why}"),
        Err(why) => {
            eprintln!("SKIPPED on PostgreSQL (unreachable: {why}); set CI=true to require it")
        }
    }
    all
}
