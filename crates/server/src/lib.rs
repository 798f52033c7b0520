//! # consign-server
//!
//! Configuration and wiring of Consign, and the `consign` binary. [`Application::build`] is the
//! one builder `main` and the integration tests share.
#![deny(missing_docs)]

mod app;
mod config;
mod log_time;
mod system;

pub use app::{Application, Core, StartError};
pub use config::{
    empty_settings_unset, file_into_environment, keys, setting_error, shown_database_url, Config,
    ConfigError, GatewayKind, Settings,
};
pub use log_time::LogTime;
pub use system::{OsRandom, SystemClock};
