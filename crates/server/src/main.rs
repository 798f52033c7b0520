//! `consign`: serve Centra's shipment workflow, manage API keys, apply migrations.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use consign_db::LogCopy;
use consign_domain::ReturnId;
use consign_ports::ApiKeyId;
use consign_server::{shown_database_url, Application, Config, Core, Settings};
use consign_service::{HandSettlement, RefundFinding};

/// The Rust side's allocator (SQLite keeps the C library's).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Centra's Order API shipment workflow. Every setting is a flag and an environment variable;
/// the environment (or --config FILE) is how operators usually set them.
// No `Debug`: the settings hold secrets.
#[derive(Parser)]
#[command(name = "consign", version, propagate_version = true)]
struct Cli {
    /// Read settings from FILE (KEY=VALUE lines); the environment overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the settings and print them (secrets masked).
    CheckConfig,
    /// Manage API keys.
    #[command(subcommand)]
    ApiKey(KeyCommand),
    /// Settle captures recovery could not settle.
    #[command(subcommand)]
    Capture(CaptureCommand),
    /// Settle refunds recovery could not settle.
    #[command(subcommand)]
    Refund(RefundCommand),
    /// Confirmations the mail server refused for good.
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// List the confirmations the mail server refused for good (oldest first): id, shipment,
    /// kind, what the server answered.
    Refused {
        /// At most this many.
        #[arg(long, default_value = "100", value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Send a refused confirmation again, with the next outbox pass (once the customer's
    /// mailbox is mended).
    Resend {
        /// Its id, from `mail refused`.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum RefundCommand {
    /// Settle a refund flagged for review (`refundState: "needsReview"`) as the provider's
    /// dashboard shows it: --refunded with the provider's reference, or --not-refunded.
    Settle {
        /// The return, as the API names it (`returnId`).
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        return_id: i64,
        /// The money went back: the provider's reference of the refund. The return is
        /// completed and its credit note issued.
        #[arg(
            long,
            value_name = "REFERENCE",
            conflicts_with = "not_refunded",
            required_unless_present = "not_refunded"
        )]
        refunded: Option<String>,
        /// No refund was made for it: why, kept with the decline. The held amount is released
        /// and the refund can be asked again.
        #[arg(long, value_name = "NOTE")]
        not_refunded: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CaptureCommand {
    /// Settle a capture flagged for review (`captureState: "needsReview"`) as the provider's
    /// dashboard shows it: --captured with the provider's reference, or --not-captured.
    Settle {
        /// The shipment, as the API names it (`<order>-<n>`).
        shipment: consign_domain::ShipmentId,
        /// The money was captured: the provider's reference of the capture.
        #[arg(
            long,
            value_name = "REFERENCE",
            conflicts_with = "not_captured",
            required_unless_present = "not_captured"
        )]
        captured: Option<String>,
        /// Nothing was captured for it: why, kept with the decline. Its shipment is voided (or,
        /// completed later, left uncaptured) and its units can ship again.
        #[arg(long, value_name = "NOTE")]
        not_captured: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key; prints only the key.
    Create {
        /// A label to recognise it by.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key.
    Revoke {
        /// The key's id (from `list`).
        id: i64,
    },
}

fn main() -> ExitCode {
    // A configuration file stands in for the environment; read it before the settings are.
    if let Some(file) = config_file_argument() {
        if let Err(error) = consign_server::file_into_environment(&file) {
            return fail(&format!("configuration: {error}"));
        }
    }
    consign_server::empty_settings_unset();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A setting's value refused: named by its environment name, as operators set it, and
        // never repeated (it may be a secret). Anything else (help, a command's own argument,
        // an unknown flag) as clap says it.
        Err(error) => match consign_server::setting_error(&error) {
            Some(refused) => return fail(&format!("configuration: {refused}")),
            None => error.exit(),
        },
    };
    // A filter or format that cannot be read is refused, never replaced: a typo would
    // otherwise change what is logged, or break a log shipper, without a word.
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => {
            match tracing_subscriber::EnvFilter::try_new(&text) {
                Ok(filter) => filter,
                Err(error) => return fail(&format!("configuration: RUST_LOG: {error}")),
            }
        }
        _ => "info".into(),
    };
    let json = match std::env::var("CONSIGN_LOG_FORMAT") {
        Ok(format) if format.trim().eq_ignore_ascii_case("json") => true,
        Ok(format) if format.trim().is_empty() || format.trim().eq_ignore_ascii_case("text") => {
            false
        }
        Err(std::env::VarError::NotPresent) => false,
        Ok(_) | Err(_) => {
            return fail("configuration: CONSIGN_LOG_FORMAT: must be text or json");
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(consign_server::LogTime)
        // Colours only on a terminal: a log file must be plain text.
        .with_ansi(std::io::stderr().is_terminal());
    // One JSON object per line for log shippers; readable text otherwise.
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    consign_service::install_fail_points_from_env();
    let config = match Config::from_settings(cli.settings) {
        Ok(config) => config,
        Err(error) => return fail(&format!("configuration: {error}")),
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(serve(config)),
        Command::CheckConfig => {
            print!("{}", describe(&config));
            Ok(())
        }
        Command::Migrate => on_a_runtime(migrate(config)),
        Command::ApiKey(command) => on_a_runtime(api_key(config, command)),
        Command::Capture(command) => on_a_runtime(capture(config, command)),
        Command::Refund(command) => on_a_runtime(refund(config, command)),
        Command::Mail(command) => on_a_runtime(mail(config, command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => fail(&why),
    }
}

/// Runs a command's work to its end on a multi-threaded runtime of its own.
fn on_a_runtime(work: impl std::future::Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?
        .block_on(work)
}

/// `--config FILE` or `--config=FILE`, looked for before the settings are parsed.
fn config_file_argument() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().enumerate().find_map(|(i, arg)| {
        if arg == "--config" {
            args.get(i + 1).map(PathBuf::from)
        } else {
            arg.strip_prefix("--config=").map(PathBuf::from)
        }
    })
}

/// The effective settings, secrets masked.
fn describe(config: &Config) -> String {
    let mask = |set: bool| if set { "(set)" } else { "(unset)" };
    let database = shown_database_url(&config.database_url);
    let mail = match &config.smtp_url {
        Some(_) => "smtp (set)".to_owned(),
        None => format!("folder {}", config.mail_dir),
    };
    let metrics = match (&config.metrics_listen, &config.metrics_token) {
        (Some(address), _) => format!("on {address}"),
        (None, Some(_)) => "on the main listener, bearer token (set)".to_owned(),
        (None, None) => "off (set CONSIGN_METRICS_TOKEN or CONSIGN_METRICS_LISTEN)".to_owned(),
    };
    [
        "configuration is valid".to_owned(),
        format!("listen           {}", config.listen),
        format!("database         {database}"),
        format!("base path        {}", config.base_path),
        format!("public url       {}", config.public_url),
        format!(
            "gateways         {} (default {})",
            config.gateway_names().join(", "),
            config.gateway_names()[0]
        ),
        format!("api key          {}", mask(config.api_key.is_some())),
        format!("max body         {} bytes", config.max_body),
        format!("recovery after   {:?}", config.recovery_after),
        format!("mail             {mail}"),
        format!("mail from        {}", config.store.mail_from),
        format!(
            "document secret  {}",
            mask(config.document_secret.is_some())
        ),
        format!("metrics          {metrics}"),
    ]
    .join("\n")
        + "\n"
}

fn fail(why: &str) -> ExitCode {
    eprintln!("consign: {why}");
    ExitCode::FAILURE
}

async fn serve(config: Config) -> Result<(), String> {
    let listen = config.listen;
    let base = config.base_path.clone();
    let gateways = config.gateway_names();
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(key) = &app.created_key {
        println!(
            "\nNo API key existed, so Consign created one. It is shown only this once:\n\n    {key}\n\n\
             Send it with every call, for example:\n\n    \
             curl -H 'API-Authorization: {key}' http://{listen}{base}/orders\n\n\
             More keys: `consign api-key create`; list or revoke them with `consign api-key list|revoke`.\n"
        );
    }
    if gateways.contains(&"sandbox") && gateways.len() > 1 {
        tracing::warn!(
            gateways = %gateways.join(","),
            "the sandbox gateway is enabled beside a real one: orders naming `sandbox` are captured without moving money"
        );
    }
    if gateways == ["sandbox"] {
        tracing::info!(%listen, %base, "consign is serving (sandbox payments move no money)");
    } else {
        tracing::info!(%listen, %base, gateways = %gateways.join(","), "consign is serving");
    }
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn migrate(config: Config) -> Result<(), String> {
    let core = Core::open(&config).map_err(|e| e.to_string())?;
    leave_writes_in_the_file(&core).await;
    eprintln!("migrations applied");
    Ok(())
}

async fn api_key(config: Config, command: KeyCommand) -> Result<(), String> {
    let core = Core::open(&config).map_err(|e| e.to_string())?;
    let result = key_command(&core, command).await;
    leave_writes_in_the_file(&core).await;
    result
}

/// A command's writes, left in the database file itself (SQLite) before the process ends: its
/// connections close as it exits, in no set order, and SQLite copies its log into the file
/// only when the last one closes, so the copy is made here. It does not wait on a server
/// running on the same file, nor hold up its writes; what it leaves is safe in the log (SQLite
/// reads it on the next open) and reaches the file at the server's next checkpoint, so that is
/// only a warning. (Were the server's stop to overlap the copy, the stop's own checkpoint
/// would find it busy and say so in the server's log.)
async fn leave_writes_in_the_file(core: &Core) {
    match core.database.copy_log_into_file().await {
        Ok(LogCopy::All) => {}
        Ok(LogCopy::Part) => tracing::warn!(
            "part of the database log is still beside the file: another connection is using it"
        ),
        Err(error) => tracing::warn!(%error, "the database log was not copied into the file"),
    }
}

async fn key_command(core: &Core, command: KeyCommand) -> Result<(), String> {
    let consign = &core.consign;
    match command {
        KeyCommand::Create { label } => {
            let (id, key) = consign
                .create_api_key(&label)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("created key {} ({label}); it is shown only this once", id.0);
            println!("{key}");
        }
        KeyCommand::List => {
            println!("{:>4}  {:<10}  {:<8}  label", "id", "prefix", "status");
            for key in consign.list_api_keys().await.map_err(|e| e.to_string())? {
                let status = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:>4}  {:<10}  {:<8}  {}",
                    key.id.0, key.prefix, status, key.label
                );
            }
        }
        KeyCommand::Revoke { id } => {
            if consign
                .revoke_api_key(ApiKeyId(id))
                .await
                .map_err(|e| e.to_string())?
            {
                eprintln!("key {id} revoked");
            } else {
                return Err(format!("no active key {id}"));
            }
        }
    }
    Ok(())
}

async fn capture(config: Config, command: CaptureCommand) -> Result<(), String> {
    let CaptureCommand::Settle {
        shipment,
        captured,
        not_captured,
    } = command;
    let finding = match (captured, not_captured) {
        (Some(reference), None) if !reference.trim().is_empty() => {
            HandSettlement::Captured { reference }
        }
        (None, Some(note)) if !note.trim().is_empty() => HandSettlement::NotCaptured { note },
        _ => return Err("give --captured REFERENCE or --not-captured NOTE, not empty".into()),
    };
    let core = Core::open(&config).map_err(|e| e.to_string())?;
    let settled = core.consign.settle_by_hand(shipment, finding).await;
    leave_writes_in_the_file(&core).await;
    let settled = settled.map_err(|e| e.to_string())?;
    println!("shipment {shipment}: {}", settled.state.as_str());
    Ok(())
}

async fn refund(config: Config, command: RefundCommand) -> Result<(), String> {
    let RefundCommand::Settle {
        return_id,
        refunded,
        not_refunded,
    } = command;
    let id = ReturnId(return_id);
    let finding = match (refunded, not_refunded) {
        (Some(reference), None) if !reference.trim().is_empty() => {
            RefundFinding::Refunded { reference }
        }
        (None, Some(note)) if !note.trim().is_empty() => RefundFinding::NotRefunded { note },
        _ => return Err("give --refunded REFERENCE or --not-refunded NOTE, not empty".into()),
    };
    let core = Core::open(&config).map_err(|e| e.to_string())?;
    let settled = core.consign.settle_refund_by_hand(id, finding).await;
    leave_writes_in_the_file(&core).await;
    let settled = settled.map_err(|e| e.to_string())?;
    println!("return {id}: refund {}", settled.refund_state.as_str());
    Ok(())
}

async fn mail(config: Config, command: MailCommand) -> Result<(), String> {
    let core = Core::open(&config).map_err(|e| e.to_string())?;
    match command {
        MailCommand::Refused { limit } => {
            let refused = core
                .consign
                .refused_confirmations(limit)
                .await
                .map_err(|e| e.to_string())?;
            for r in &refused {
                let kind = match r.message.kind {
                    consign_ports::OutboxKind::ShippingConfirmation => "shipping".to_owned(),
                    consign_ports::OutboxKind::RefundConfirmation(id) => format!("refund {id}"),
                };
                println!(
                    "{}\t{}\t{kind}\t{}",
                    r.message.id, r.message.shipment, r.error
                );
            }
            if refused.is_empty() {
                println!("no refused confirmations");
            }
            Ok(())
        }
        MailCommand::Resend { id } => {
            let queued = core.consign.resend_confirmation(id).await;
            leave_writes_in_the_file(&core).await;
            if queued.map_err(|e| e.to_string())? {
                println!("confirmation {id}: queued again");
                Ok(())
            } else {
                Err(format!("confirmation {id} is not a refused confirmation"))
            }
        }
    }
}
