//! What a command leaves in the SQLite file before it ends (`Database::copy_log_into_file`):
//! every write, while its own connections are still open, and no wait for another connection
//! that keeps part of the log in use.

use std::time::{Duration, Instant};

use consign_db::testing::{import_one_line_order as import, rows_of_the_file_alone, Throwaway};
use consign_db::{Database, LogCopy};
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

fn has_order(rows: &[String], id: i64) -> bool {
    rows.iter()
        .any(|r| r.starts_with("orders") && r.contains(&format!("id: {id},")))
}

/// A write is in the log, not yet in the file; after the copy the file alone holds it, with
/// every connection of the database still open (so no connection's close did it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_leaves_every_write_in_the_file() {
    let file = Throwaway::sqlite();
    let db = Database::open(&file.config).expect("open");
    import(&db, 7, 3).await;
    assert!(
        !has_order(&rows_of_the_file_alone(&file.config.target).await, 7),
        "the write is still only in the log"
    );
    assert_eq!(db.copy_log_into_file().await.expect("copy"), LogCopy::All);
    assert!(
        has_order(&rows_of_the_file_alone(&file.config.target).await, 7),
        "the file alone holds the write"
    );
}

/// Another connection reading from an older snapshot keeps the newer part of the log in use:
/// the copy leaves that part, says so, and does not wait for the reader (SQLite's busy timeout
/// here is 10 s), where the stop's checkpoint would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_never_waits_for_another_connection() {
    let file = Throwaway::sqlite();
    let db = Database::open(&file.config).expect("open");
    import(&db, 1, 3).await;
    let mut reader = SqliteConnection::establish(&file.config.target).expect("a reader");
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM orders;")
        .expect("a read that holds its snapshot");
    import(&db, 2, 3).await;
    let started = Instant::now();
    let copied = db.copy_log_into_file().await.expect("copy");
    assert_eq!(copied, LogCopy::Part, "the part the reader keeps is left");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for the reader",
        started.elapsed()
    );
    reader.batch_execute("COMMIT").expect("the read ends");
    assert_eq!(
        db.copy_log_into_file().await.expect("copy"),
        LogCopy::All,
        "then all of it"
    );
}
