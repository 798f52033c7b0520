//! Named fault points between the saga's steps (`after-reserve`, `after-capture`,
//! `after-settle`), for crash tests. They do nothing unless the `failpoints` feature is on,
//! which only test builds enable.

/// Configures fault points from `FAILPOINTS` (`after-capture=sleep(3000);after-settle=panic`).
/// Without the `failpoints` feature this does nothing.
pub fn install_fail_points_from_env() {
    if cfg!(feature = "failpoints") {
        // The scenario lives for the whole process.
        std::mem::forget(fail::FailScenario::setup());
    }
}
