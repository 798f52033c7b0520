//! The `consign` binary's reading of its settings, as an operator starts it: from the
//! environment and a configuration file, checked before anything runs.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `consign check-config` (or `args`) with exactly `env` as its settings.
fn consign(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_consign"));
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run consign")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A configuration file of this test's own.
fn config_file(name: &str, lines: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "consign-settings-{}-{name}.env",
        std::process::id()
    ));
    std::fs::write(&path, lines).unwrap();
    path
}

#[test]
fn check_config_never_shows_a_database_password() {
    for url in [
        "postgres://consign:s3cret@db.internal/consign",
        "postgres://db.internal/consign?user=consign&password=s3cret",
        "postgresql://consign@db.internal/consign?password=s3cret",
    ] {
        let output = consign(&[("DATABASE_URL", url)], &["check-config"]);
        let shown = text(&output);
        assert!(output.status.success(), "{url}: {shown}");
        assert!(!shown.contains("s3cret"), "{url}: {shown}");
        assert!(shown.contains("db.internal"), "{url}: {shown}");
    }
}

#[test]
fn a_blank_variable_leaves_the_files_value_in_force() {
    // `DATABASE_URL=` from a compose file's unset placeholder: the file's database, never a
    // fresh default one.
    let file = config_file("blank", "DATABASE_URL=sqlite://from-the-file.db\n");
    let file_arg = format!("--config={}", file.display());
    for blank in ["", "  "] {
        let output = consign(&[("DATABASE_URL", blank)], &[&file_arg, "check-config"]);
        let shown = text(&output);
        assert!(output.status.success(), "{shown}");
        assert!(shown.contains("sqlite://from-the-file.db"), "{shown}");
    }
    // A value the environment does give wins over the file's.
    let output = consign(
        &[("DATABASE_URL", "sqlite://from-the-environment.db")],
        &[&file_arg, "check-config"],
    );
    assert!(
        text(&output).contains("sqlite://from-the-environment.db"),
        "{}",
        text(&output)
    );
    std::fs::remove_file(file).unwrap();
}

#[test]
fn settings_that_cannot_work_stop_the_start_naming_their_key() {
    for (env, key) in [
        (vec![("RUST_LOG", "consign::access=inf")], "RUST_LOG"),
        (vec![("CONSIGN_LOG_FORMAT", "xml")], "CONSIGN_LOG_FORMAT"),
        (
            vec![("CONSIGN_STRIPE_SECRET_KEY", "sk_live_forgotten")],
            "CONSIGN_STRIPE_SECRET_KEY",
        ),
        (
            vec![
                ("CONSIGN_GATEWAY", "stripe"),
                ("CONSIGN_STRIPE_SECRET_KEY", "sk_live_x"),
                ("CONSIGN_STRIPE_API_BASE", "https://api.stripe.com/v1"),
            ],
            "CONSIGN_STRIPE_API_BASE",
        ),
        (
            vec![("CONSIGN_DOCUMENT_TTL", "106751991167300d")],
            "CONSIGN_DOCUMENT_TTL",
        ),
        (vec![("CONSIGN_API_KEY", "changeme")], "CONSIGN_API_KEY"),
    ] {
        let output = consign(&env, &["check-config"]);
        let shown = text(&output);
        assert!(!output.status.success(), "{env:?}: {shown}");
        assert!(shown.contains(key), "{env:?}: {shown}");
        assert!(!shown.contains("panicked"), "{env:?}: {shown}");
        // A secret's value is never repeated back.
        for (key, value) in &env {
            if key.contains("KEY") {
                assert!(!shown.contains(value), "{key} repeated: {shown}");
            }
        }
    }
    // The format is read in any case.
    let output = consign(&[("CONSIGN_LOG_FORMAT", "JSON")], &["check-config"]);
    assert!(output.status.success(), "{}", text(&output));
}
