//! `consign-bench`: seeds orders through Consign's API, drives create-shipment with concurrent
//! clients, checks the invariants through the API, and (with `--baseline`) runs the same durable
//! work directly on the database to print Consign's figures as ratios of the database's own.

mod baseline;
mod cpu;
mod floor;
mod history;
mod load;
mod options;
mod pairs;
mod prepared;
mod queued_writer;
mod report;
mod server;
mod sqlite_writer;
mod wire;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use consign_db::testing::Throwaway;
use consign_db::Database;
use history::Raw;
use options::{Backend, Options};
use report::{header, Measured, WriterFigures};
use serde_json::json;

fn throwaway(options: &Options) -> Result<Throwaway, String> {
    match options.backend {
        Backend::Sqlite => Ok(Throwaway::sqlite()),
        Backend::Postgres => {
            std::env::set_var("CONSIGN_TEST_POSTGRES", &options.postgres_server);
            Throwaway::postgres()
        }
    }
}

/// A migrated database with history.
fn prepared(options: &Options) -> Result<Throwaway, String> {
    let db = throwaway(options)?;
    drop(Database::open(&db.config).map_err(|e| e.to_string())?);
    let sqlite = (options.backend == Backend::Sqlite).then_some(db.config.target.as_str());
    let mut raw = Raw::open(&db.url, sqlite)?;
    let started = Instant::now();
    history::seed_history(&mut raw, options.history())?;
    eprintln!(
        "history: {} earlier shipments in {:.1}s",
        options.history(),
        started.elapsed().as_secs_f64()
    );
    Ok(db)
}

/// A migrated database with history and the baselines' orders (the ceilings', the floor's).
fn baseline_database(options: &Options) -> Result<Throwaway, String> {
    let db = prepared(options)?;
    let sqlite = (options.backend == Backend::Sqlite).then_some(db.config.target.as_str());
    let mut raw = Raw::open(&db.url, sqlite)?;
    baseline::seed_orders(&mut raw, options.orders())?;
    history::analyze(&mut raw)?;
    Ok(db)
}

async fn run(options: Options) -> Result<bool, String> {
    let binary = server::binary(options.server.as_deref())?;
    let db = prepared(&options)?;
    let consign = server::start(
        &binary,
        &options.client_url(&db.url),
        options.latency_ms,
        options.pool_size,
        &[],
        &options.mail_parent(),
    )
    .await?;
    eprintln!(
        "consign ready in {:.0} ms on an existing database",
        consign.ready_after.as_secs_f64() * 1000.0
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients() * 2)
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let seeded = load::seed(
        &client,
        &consign.base,
        options.orders(),
        options.full_orders(),
        options.clients(),
    )
    .await?;
    eprintln!(
        "seeded {} orders in {:.1}s",
        options.orders() + options.full_orders(),
        started.elapsed().as_secs_f64()
    );
    history::analyze(&mut Raw::open(
        &db.url,
        (options.backend == Backend::Sqlite).then_some(db.config.target.as_str()),
    )?)?;
    // An older server does not count its statements: the figure is then left out.
    let statements_before = consign.statements_sent(&client).await.ok();
    // SQLite's writer: its commits (an older server does not count them) and its thread's CPU.
    let writer_before = consign
        .writer_commits(&client)
        .await
        .ok()
        .zip(consign.writer_cpu_seconds());
    let cpu_before = consign.cpu_seconds();
    let database_before = database_cpu(&options);
    let generator_before = cpu::own_seconds();
    let started = Instant::now();
    let seeded = Arc::new(seeded);
    let (tally, made) = load::drive_as_asked(&options, &consign.base, seeded.clone()).await?;
    let shipments = made.shipments;
    let elapsed = started.elapsed();
    let cpu = consign.cpu_seconds() - cpu_before;
    let database_cpu_seconds = database_cpu(&options)
        .zip(database_before)
        .map(|(a, b)| a - b);
    let generator_cpu = cpu::own_seconds() - generator_before;
    let statements = match statements_before {
        Some(before) => Some(consign.statements_sent(&client).await? - before),
        None => None,
    };
    let writer = match writer_before {
        Some((commits, cpu)) => Some(WriterFigures {
            commits: consign.writer_commits(&client).await? - commits,
            cpu_seconds: consign.writer_cpu_seconds().unwrap_or(cpu) - cpu,
        }),
        None => None,
    };
    let rss = consign.peak_rss_mib();
    // Before the invariants are checked, so that they cover the rounds' shipments too.
    let paired = if options.pairs > 0 && options.baseline && options.backend == Backend::Sqlite {
        Some(pairs::run(&options, &client, &consign.base, &seeded, shipments).await?)
    } else {
        if options.pairs > 0 {
            println!("--pairs: SQLite with --baseline only; not run");
        }
        None
    };
    // The whole run's peak before the check (the load, and with --pairs its rounds too).
    let unchecked_rss = consign.peak_rss_mib();
    let checking = std::time::Instant::now();
    let failures = load::check_invariants(
        &client,
        &consign.base,
        options.orders() + options.full_orders(),
    )
    .await?;
    // The check pages through every order 1,000 at a time (`GET orders`, its largest page),
    // each with all its shipments: what a listing costs in memory, beside what the load did.
    let listing_rss = consign.peak_rss_mib();
    let check_secs = checking.elapsed().as_secs_f64();
    let ready_ms = consign.ready_after.as_secs_f64() * 1000.0;
    let mails = server::mails_in(consign.mail_dir());
    consign.stop();
    let requests = tally.requests();
    let backend = match options.backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let mut measured = Measured::of_load(
        format!(
            "consign {backend}, {} clients, {} ms",
            options.clients(),
            options.latency_ms
        ),
        tally,
        shipments,
        elapsed,
        cpu,
    );
    measured.database_cpu_seconds = database_cpu_seconds;
    measured.writer = writer;
    if options.backend == Backend::Postgres {
        let url = options.client_url(&db.url);
        let mode = url
            .split("sslmode=")
            .nth(1)
            .and_then(|m| m.split('&').next());
        println!(
            "PostgreSQL clients (Consign, pgbench) connect with sslmode={}",
            mode.unwrap_or("prefer (libpq's default)")
        );
    }
    println!("{}", header());
    println!("{}", measured.row());
    // The database running the same durable work: the ordinary way, then at its ceiling.
    let mut baselines = Vec::new();
    if options.baseline {
        let kinds: &[baseline::Kind] = match options.backend {
            Backend::Postgres => &[baseline::Kind::Ordinary, baseline::Kind::Ceiling],
            Backend::Sqlite => &[
                baseline::Kind::Ordinary,
                baseline::Kind::Ceiling,
                baseline::Kind::Lockstep,
            ],
        };
        for &kind in kinds {
            let base_db = baseline_database(&options)?;
            let database_before = database_cpu(&options);
            let mut result = match options.backend {
                Backend::Postgres => baseline::pgbench(
                    &options.client_url(&base_db.url),
                    kind,
                    options.pgbench_clients(),
                    options.pgbench_threads(),
                    options.duration(),
                    options.orders(),
                    options.uncaptured_percent,
                )?,
                Backend::Sqlite if kind == baseline::Kind::Ceiling => queued_writer::run(
                    &base_db.config.target,
                    options.clients(),
                    load::Limit::For(options.duration()),
                    options.orders(),
                    options.uncaptured_percent,
                )?,
                Backend::Sqlite => baseline::sqlite_single_writer(
                    &base_db.config.target,
                    kind,
                    options.clients(),
                    options.duration(),
                    options.orders(),
                )?,
            };
            result.database_cpu_seconds = database_cpu(&options)
                .zip(database_before)
                .map(|(a, b)| a - b);
            println!("{}", result.row());
            baselines.push((kind, result));
        }
    }
    let floor = if options.floor {
        let floor_db = baseline_database(&options)?;
        let database_before = database_cpu(&options);
        let floor = floor::Floor::start(
            &options.client_url(&floor_db.url),
            options.backend,
            options.orders(),
            options.full_orders(),
        )
        .await?;
        let run = floor
            .drive(
                &client,
                options.clients(),
                load::Limit::For(options.duration()),
            )
            .await;
        floor.stop();
        let mut run = run?;
        run.measured.database_cpu_seconds = database_cpu(&options)
            .zip(database_before)
            .map(|(a, b)| a - b);
        println!("{}", run.measured.row());
        Some(run)
    } else {
        None
    };
    let requests_per_cpu_second = if cpu > 0.0 {
        requests as f64 / cpu
    } else {
        0.0
    };
    println!();
    println!(
        "requests {requests} in {:.1}s: {:.0} requests/s, {:.0} shipments/s",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        measured.throughput()
    );
    if options.returns_percent > 0 {
        println!(
            "refunds: {} returns refunded in {:.1}s: {:.0} refunds/s ({}% of captured shipments asked)",
            made.refunds,
            elapsed.as_secs_f64(),
            made.refunds as f64 / elapsed.as_secs_f64(),
            options.returns_percent
        );
    }
    println!(
        "answers: ok {} / no {} / 4xx {} / 5xx {} / transport {}",
        measured.tally.ok,
        measured.tally.no,
        measured.tally.client_errors,
        measured.tally.server_errors,
        measured.tally.transport_errors
    );
    println!(
        "load generator CPU: {:.3} ms per request ({:.0} requests per CPU second)",
        generator_cpu * 1000.0 / requests.max(1) as f64,
        requests as f64 / generator_cpu.max(f64::MIN_POSITIVE)
    );
    match statements {
        Some(statements) => println!(
            "statements to the database: {:.2} per request, {:.2} per shipment ({}; prepares included)",
            statements as f64 / requests.max(1) as f64,
            statements as f64 / shipments.max(1) as f64,
            match options.backend {
                Backend::Postgres => "each a round trip",
                Backend::Sqlite => "calls into the embedded library",
            }
        ),
        None => println!("statements to the database: not counted by this server"),
    }
    for line in std::iter::once(&measured)
        .chain(baselines.iter().map(|(_, b)| b))
        .filter_map(Measured::writer_line)
    {
        println!("{line}");
    }
    println!(
        "confirmation mails the server wrote to its folder in {} (delivered by its outbox): {mails}",
        options.mail_parent().display()
    );
    println!("server CPU: {:.3} ms per request ({requests_per_cpu_second:.0} requests per CPU second); peak RSS {rss:.1} MiB; ready in {ready_ms:.0} ms", if requests > 0 { cpu * 1000.0 / requests as f64 } else { 0.0 });
    let cpu_ms_per_request = if requests > 0 {
        cpu * 1000.0 / requests as f64
    } else {
        0.0
    };
    let ceiling_throughput = baselines
        .iter()
        .find(|(kind, _)| *kind == baseline::Kind::Ceiling)
        .map(|(_, b)| b.throughput());
    if let Some(floor) = &floor {
        match options.backend {
            Backend::Postgres => println!(
                "floor (actix-web, the ceiling's two prepared statements, a canned answer): server CPU \
                 {:.3} ms per request, {:.2} statements per request, load generator {:.3} ms per \
                 request; Consign's server CPU / the floor's: {:.2}x",
                floor.cpu_ms_per_request,
                floor.statements_per_request,
                floor.generator_cpu_ms_per_request,
                cpu_ms_per_request / floor.cpu_ms_per_request.max(f64::MIN_POSITIVE)
            ),
            Backend::Sqlite => println!(
                "floor (actix-web, the ceiling's writer, a canned answer): {:.0} shipments/s, \
                 server CPU {:.3} ms per request, {:.2} writes per request; Consign / the floor: \
                 {:.2}x{}",
                floor.measured.throughput(),
                floor.cpu_ms_per_request,
                floor.statements_per_request,
                measured.throughput() / floor.measured.throughput().max(f64::MIN_POSITIVE),
                ceiling_throughput.map_or(String::new(), |ceiling| format!(
                    "; the floor / the ceiling: {:.2}x",
                    floor.measured.throughput() / ceiling.max(f64::MIN_POSITIVE)
                ))
            ),
        }
        if let Some(line) = floor.measured.writer_line() {
            println!("{line}");
        }
        if options.uncaptured_percent > 0 {
            println!(
                "the floor captures every shipment at creation, where Consign and the ceiling \
                 complete {}% later: --uncaptured 0 compares the same work",
                options.uncaptured_percent
            );
        }
    }
    let mut ratios = json!({});
    for (kind, base) in &baselines {
        let name = match kind {
            baseline::Kind::Ordinary => "ordinary",
            baseline::Kind::Ceiling => "ceiling",
            baseline::Kind::Lockstep => "lockstep",
        };
        let throughput = measured.throughput() / base.throughput().max(f64::MIN_POSITIVE);
        let p99 = measured.p99 / base.p99.max(f64::MIN_POSITIVE);
        println!("ratios to the {name} baseline: throughput {throughput:.2}x, p99 {p99:.2}x");
        ratios[name] = json!({"throughput": throughput, "p99": p99});
        if options.latency_ms > 0 {
            // With a slow provider the bound is whichever is lower: what the clients can offer
            // (each waits for the provider) or what the database can do.
            let offered = options.clients() as f64 * 1000.0 / options.latency_ms as f64;
            let bound = offered.min(base.throughput());
            let of_bound = measured.throughput() / bound.max(f64::MIN_POSITIVE);
            println!(
                "throughput / min(clients / latency = {offered:.0}/s, {name} limit = {:.0}/s): {of_bound:.2}x",
                base.throughput()
            );
            ratios[name]["of_bound"] = json!(of_bound);
        }
    }
    if let Some((rounds, answers)) = &paired {
        for (i, round) in rounds.iter().enumerate() {
            println!(
                "pair {}: consign {:.0} shipments/s, then the ceiling {:.0}/s: {:.2}x{}",
                i + 1,
                round.consign,
                round.ceiling,
                round.ratio(),
                round.floor.map_or(String::new(), |floor| format!(
                    "; then the floor {floor:.0}/s: the floor / the ceiling {:.2}x, consign / \
                     the floor {:.2}x",
                    floor / round.ceiling.max(f64::MIN_POSITIVE),
                    round.consign / floor.max(f64::MIN_POSITIVE)
                ))
            );
        }
        if let Some(median) = pairs::median_ratio(rounds) {
            println!(
                "ratio to the ceiling, the median of {} pairs run back to back: {median:.2}x",
                rounds.len()
            );
            ratios["ceiling_pairs"] = json!({
                "median": median,
                "rounds": rounds
                    .iter()
                    .map(|r| json!({"consign": r.consign, "ceiling": r.ceiling, "floor": r.floor}))
                    .collect::<Vec<_>>(),
            });
        }
        let floor_to_ceiling =
            pairs::median(rounds.iter().filter_map(pairs::Round::floor_to_ceiling));
        let consign_to_floor =
            pairs::median(rounds.iter().filter_map(pairs::Round::consign_to_floor));
        if let Some((floor_to_ceiling, consign_to_floor)) = floor_to_ceiling.zip(consign_to_floor) {
            println!(
                "medians of the same pairs: the floor / the ceiling {floor_to_ceiling:.2}x, \
                 consign / the floor {consign_to_floor:.2}x"
            );
            ratios["ceiling_pairs"]["floor_to_ceiling_median"] = json!(floor_to_ceiling);
            ratios["ceiling_pairs"]["consign_to_floor_median"] = json!(consign_to_floor);
        }
        println!(
            "pairs' answers: ok {} / no {} / 4xx {} / 5xx {} / transport {}",
            answers.ok,
            answers.no,
            answers.client_errors,
            answers.server_errors,
            answers.transport_errors
        );
    }
    // The baselines complete the uncaptured share as Consign's load does (pgbench's scripts,
    // SQLite's ceiling) except SQLite's ordinary writer and lockstep loop; none returns.
    let completes_missing = options.backend == Backend::Sqlite && options.uncaptured_percent > 0;
    if !baselines.is_empty() && (completes_missing || options.returns_percent > 0) {
        let missing = match (completes_missing, options.returns_percent > 0) {
            (true, true) => format!(
                "SQLite's ordinary and lockstep baselines do not complete the {}% of shipments \
                 completed later, and no baseline returns the {}% returned",
                options.uncaptured_percent, options.returns_percent
            ),
            (true, false) => format!(
                "SQLite's ordinary and lockstep baselines do not complete the {}% of shipments \
                 completed later (the ceiling does)",
                options.uncaptured_percent
            ),
            _ => format!(
                "no baseline returns the {}% of shipments returned",
                options.returns_percent
            ),
        };
        println!(
            "{missing}: work they do not do (--uncaptured 0 --returns 0 compares the same work)"
        );
    }
    println!("peak RSS with the invariants' check, which lists every order 1,000 a page: {listing_rss:.1} MiB, {unchecked_rss:.1} MiB before it (the check took {check_secs:.2} s)");
    if failures.is_empty() {
        println!("invariants: ok (no line over-allocated, captured values match their shipments, nothing refunded above its capture, nothing left pending)");
    } else {
        for failure in failures.iter().take(20) {
            println!("invariant violated: {failure}");
        }
    }
    if let Some(path) = &options.json {
        let document = json!({
            "consign": measured.json(),
            "refunds": made.refunds,
            "baselines": baselines.iter().map(|(_, b)| b.json()).collect::<Vec<_>>(),
            "ratios": ratios,
            "statements_per_request": statements.map(|n| n as f64 / requests.max(1) as f64),
            "statements_per_shipment": statements.map(|n| n as f64 / shipments.max(1) as f64),
            "cpu_ms_per_request": cpu_ms_per_request,
            "floor": floor.as_ref().map(|f| json!({
                "run": f.measured.json(),
                "cpu_ms_per_request": f.cpu_ms_per_request,
                "statements_per_request": f.statements_per_request,
                "generator_cpu_ms_per_request": f.generator_cpu_ms_per_request,
            })),
            "confirmation_mails": mails,
            "peak_rss_mib": rss,
            "peak_rss_with_listing_mib": listing_rss,
            "peak_rss_before_listing_mib": unchecked_rss,
            "invariants_check_secs": check_secs,
            "ready_ms": ready_ms,
            "invariant_failures": failures,
        });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&document).unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
    }
    // Every floor request ships: any other answer means the floor did less than it claims.
    let floor_shipped_all = floor.as_ref().is_none_or(|f| match f.short_of_shipping() {
        Some(why) => {
            println!("{why}");
            false
        }
        None => true,
    });
    let pairs_answered = paired
        .as_ref()
        .is_none_or(|(_, a)| a.server_errors == 0 && a.transport_errors == 0);
    Ok(failures.is_empty()
        && floor_shipped_all
        && pairs_answered
        && measured.tally.server_errors == 0
        && measured.tally.transport_errors == 0)
}

/// The local PostgreSQL server's CPU seconds so far (`None` on SQLite).
fn database_cpu(options: &Options) -> Option<f64> {
    match options.backend {
        Backend::Postgres => cpu::of_local_postgres(),
        Backend::Sqlite => None,
    }
}

fn main() -> ExitCode {
    let options = <Options as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("consign-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
