//! Command lines of the two binaries (clap derive): [`server::ServerArgs`] for `update-api`,
//! [`apiclient::ApiclientArgs`] for `apiclient`. The binaries only parse, call `run` and map
//! errors to exit codes.

pub mod apiclient;
pub mod server;

use std::path::{Path, PathBuf};

/// The default socket: `<sysroot>/run/api.sock`.
pub fn default_socket(sysroot: &Path) -> PathBuf {
    sysroot.join("run/api.sock")
}

/// Logs to stderr only; `RUST_LOG` wins over `level`.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A current-thread tokio runtime.
pub fn runtime() -> crate::Result<tokio::runtime::Runtime> {
    use snafu::ResultExt;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context(crate::error::RuntimeSnafu)
}
