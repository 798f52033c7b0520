//! Named fault points between the saga's steps (`after-reserve`, `after-capture`,
//! `after-settle`), after a delete's commit (`after-delete`), before the outbox sends a claimed
//! message (`outbox-before-send`) and in the read of a listing's later part
//! (`later-order-part`), for crash and fault tests. They do nothing unless the
//! `failpoints` feature is on, which only test builds enable.
//!
//! Two ways to use them: `FAILPOINTS` (the `fail` crate's actions: `sleep(ms)`, `panic`, ...),
//! which block the worker thread, and [`reached`]'s pause, which parks a request without
//! blocking its thread, so every request in flight can be parked at the same point at once,
//! and records each arrival so a test can see that they all got there.

/// Configures fault points from `FAILPOINTS` (`after-capture=sleep(3000);after-settle=panic`).
/// Without the `failpoints` feature this does nothing.
pub fn install_fail_points_from_env() {
    if cfg!(feature = "failpoints") {
        // The scenario lives for the whole process.
        std::mem::forget(fail::FailScenario::setup());
    }
}

/// A saga step's fault point: with the `failpoints` feature, appends `name` as a line to the
/// file `CONSIGN_FAILPOINT_ARRIVALS` names (a test counts them), and when
/// `CONSIGN_FAILPOINT_PAUSE` names this point, waits here for two minutes without blocking the
/// thread (the test kills the process meanwhile). Without the feature it does nothing.
pub(crate) async fn reached(name: &str) {
    if !cfg!(feature = "failpoints") {
        return;
    }
    if let Ok(path) = std::env::var("CONSIGN_FAILPOINT_ARRIVALS") {
        use std::io::Write;
        // One write of the whole line: appends from several threads never interleave.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{name}\n").as_bytes()));
        if let Err(error) = appended {
            tracing::error!(%error, %path, "fault point arrival not recorded");
        }
    }
    if std::env::var("CONSIGN_FAILPOINT_PAUSE").is_ok_and(|point| point == name) {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    }
}
