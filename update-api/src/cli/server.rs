//! `update-api [--sysroot DIR] [--socket-path P] [--disk PATH] [--log-level F]`.

use crate::Result;
use crate::server::{Api, ensure_not_served, serve};
use clap::Parser;
use std::path::PathBuf;

/// The update API server.
#[derive(Debug, Parser)]
#[command(
    name = "update-api",
    version,
    about = "The update API server on a Unix socket"
)]
pub struct ServerArgs {
    /// Resolve every path under this directory.
    #[arg(long, default_value = "/")]
    pub sysroot: PathBuf,
    /// The socket to listen on (default `<sysroot>/run/api.sock`).
    #[arg(long)]
    pub socket_path: Option<PathBuf>,
    /// The disk holding the partition sets (default: updog's).
    #[arg(long)]
    pub disk: Option<PathBuf>,
    /// Log filter (tracing's syntax); `RUST_LOG` wins.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

impl ServerArgs {
    /// Refuses a socket another server answers on, derives the state, serves until SIGTERM or
    /// SIGINT, stops a running command cleanly.
    pub fn run(self) -> Result<()> {
        super::init_logging(&self.log_level);
        let socket = self
            .socket_path
            .clone()
            .unwrap_or_else(|| super::default_socket(&self.sysroot));
        // Before the status file is touched: a second server must leave the first one alone.
        ensure_not_served(&socket)?;
        super::runtime()?.block_on(async move {
            let api = Api::open(&self.sysroot, self.disk.as_deref())?;
            serve(api, &socket, shutdown_signal()).await
        })
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
    tracing::info!("stopping");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        ServerArgs::command().debug_assert();
    }
}
