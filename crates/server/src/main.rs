//! `consign`: serve Centra's shipment workflow, manage API keys, apply migrations.

use std::path::PathBuf;
use std::process::ExitCode;

use consign_ports::ApiKeyId;
use consign_server::{Application, Config, Core};

const USAGE: &str = "\
consign: Centra's Order API shipment workflow

Usage:
  consign [serve]                     run the service (the default)
  consign migrate                     apply database migrations and exit
  consign check-config                check the settings and print them (secrets masked)
  consign api-key create [--label L]  create an API key; prints only the key
  consign api-key list                list keys (never the keys themselves)
  consign api-key revoke ID           revoke a key

Options:
  --config FILE   read settings from FILE (KEY=VALUE lines); the environment overrides it
  -h, --help      this text
  -V, --version   the version

Settings (environment): CONSIGN_LISTEN, DATABASE_URL, CONSIGN_BASE_PATH, CONSIGN_API_KEY,
CONSIGN_PUBLIC_URL, CONSIGN_GATEWAY, CONSIGN_STRIPE_SECRET_KEY, CONSIGN_STRIPE_API_BASE,
CONSIGN_STRIPE_MULTICAPTURE, CONSIGN_STRIPE_TIMEOUT, CONSIGN_RECOVERY_AFTER, CONSIGN_MAX_BODY,
CONSIGN_SANDBOX_LATENCY, CONSIGN_DB_POOL_SIZE, CONSIGN_DB_TIMEOUT, CONSIGN_WORKERS, the mail,
document and seller settings, CONSIGN_LOG_FORMAT=json; see docs/operations.md.";

fn main() -> ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // One JSON object per line for log shippers; readable text otherwise.
    if std::env::var("CONSIGN_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    consign_service::install_fail_points_from_env();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let config_file = match take_option(&mut args, "--config") {
        Ok(file) => file.map(PathBuf::from),
        Err(why) => return fail(&why),
    };
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "-V" || a == "--version") {
        println!("consign {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(config_file.as_deref()) {
        Ok(config) => config,
        Err(error) => return fail(&format!("configuration: {error}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error.to_string()),
    };
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        [] | ["serve"] => actix_web::rt::System::new().block_on(serve(config)),
        ["check-config"] => {
            print!("{}", describe(&config));
            Ok(())
        }
        ["migrate"] => Core::open(&config)
            .map(|_| eprintln!("migrations applied"))
            .map_err(|e| e.to_string()),
        ["api-key", rest @ ..] => runtime.block_on(api_key(config, rest)),
        _ => Err(format!("unknown command {:?}\n\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => fail(&why),
    }
}

/// The effective settings, secrets masked.
fn describe(config: &Config) -> String {
    let mask = |set: bool| if set { "(set)" } else { "(unset)" };
    let database = match config.database_url.split_once('@') {
        Some((_, host)) if config.database_url.starts_with("postgres") => {
            format!("postgres://***@{host}")
        }
        _ => config.database_url.clone(),
    };
    let gateway = if config.stripe.is_some() {
        "stripe (and sandbox)"
    } else {
        "sandbox"
    };
    let mail = match &config.smtp_url {
        Some(_) => "smtp (set)".to_owned(),
        None => format!("folder {}", config.mail_dir),
    };
    [
        "configuration is valid".to_owned(),
        format!("listen           {}", config.listen),
        format!("database         {database}"),
        format!("base path        {}", config.base_path),
        format!("public url       {}", config.public_url),
        format!("gateway          {gateway}"),
        format!("api key          {}", mask(config.api_key.is_some())),
        format!("max body         {} bytes", config.max_body),
        format!("recovery after   {:?}", config.recovery_after),
        format!("mail             {mail}"),
        format!("mail from        {}", config.store.mail_from),
        format!(
            "document secret  {}",
            mask(config.document_secret.is_some())
        ),
    ]
    .join("\n")
        + "\n"
}

fn fail(why: &str) -> ExitCode {
    eprintln!("consign: {why}");
    ExitCode::FAILURE
}

fn take_option(args: &mut Vec<String>, name: &str) -> Result<Option<String>, String> {
    let Some(at) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    if at + 1 >= args.len() {
        return Err(format!("{name} needs a value"));
    }
    let value = args.remove(at + 1);
    args.remove(at);
    Ok(Some(value))
}

async fn serve(config: Config) -> Result<(), String> {
    let listen = config.listen;
    let base = config.base_path.clone();
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
    tracing::info!(%listen, %base, "consign is serving (sandbox payments move no money)");
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn api_key(config: Config, words: &[&str]) -> Result<(), String> {
    let mut words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    let label = take_option(&mut words, "--label")?.unwrap_or_else(|| "cli".into());
    let core = Core::open(&config).map_err(|e| e.to_string())?;
    let consign = core.consign;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["create"] => {
            let (id, key) = consign
                .create_api_key(&label)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("created key {} ({label}); it is shown only this once", id.0);
            println!("{key}");
        }
        ["list"] => {
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
        ["revoke", id] => {
            let id: i64 = id.parse().map_err(|_| format!("not a key id: {id}"))?;
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
        _ => {
            return Err(format!(
                "usage: consign api-key create [--label L] | list | revoke ID\n\n{USAGE}"
            ))
        }
    }
    Ok(())
}
