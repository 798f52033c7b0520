//! CPU time from `/proc`: this process's own, its reaped children's, or another process's.

/// User + system seconds of `/proc/<pid>/stat`, from field `utime_index` and the one after it
/// (counted after the command name, which is in parentheses and may hold spaces).
fn seconds(pid: &str, utime_index: usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(utime_index) + ticks(utime_index + 1)) / 100.0
}

/// Another process's CPU seconds (utime, stime).
pub fn of_process(pid: u32) -> f64 {
    seconds(&pid.to_string(), 11)
}

/// CPU seconds of the first thread of process `pid` (or "self") whose name starts with `name`;
/// `None` when it has none (a server without that thread, or one that has gone).
pub fn of_thread(pid: &str, name: &str) -> Option<f64> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let tid = entry.file_name();
        let tid = tid.to_str()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
        if comm.starts_with(name) {
            return Some(seconds(&format!("{pid}/task/{tid}"), 11));
        }
    }
    None
}

/// The calling thread's own CPU seconds.
pub fn this_thread_seconds() -> f64 {
    seconds("thread-self", 11)
}

/// This process's own CPU seconds (not its children's).
pub fn own_seconds() -> f64 {
    seconds("self", 11)
}

/// CPU seconds of this process's children that have been waited for (cutime, cstime).
pub fn children_seconds() -> f64 {
    seconds("self", 13)
}

/// CPU seconds of every PostgreSQL process on this machine, when the server is local: its live
/// processes' own and what the postmaster has reaped of the backends that ended (cutime,
/// cstime). `None` when no `postgres` process is visible. Other databases of the same server
/// count too (autovacuum, other clients): compare runs made alone on it.
pub fn of_local_postgres() -> Option<f64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "postgres" {
            *total.get_or_insert(0.0) += seconds(pid, 11) + seconds(pid, 13);
        }
    }
    total
}
