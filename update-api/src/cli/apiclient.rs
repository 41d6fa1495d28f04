//! `apiclient [--socket-path P | --sysroot DIR] raw|update ...`, as Bottlerocket's apiclient.

use crate::client::{self, update};
use crate::error::{self, Result};
use crate::status::UpdateStatus;
use clap::{Args, Parser, Subcommand, ValueEnum};
use snafu::ResultExt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use updog::ProgressSink;

/// The update API's client.
#[derive(Debug, Parser)]
#[command(name = "apiclient", version, about = "Client of the update API")]
pub struct ApiclientArgs {
    /// The API socket (default `<sysroot>/run/api.sock`).
    #[arg(long, short = 's', conflicts_with = "sysroot")]
    pub socket_path: Option<PathBuf>,
    /// The node's sysroot, to find the socket under.
    #[arg(long, default_value = "/")]
    pub sysroot: PathBuf,
    /// Log filter (tracing's syntax); `RUST_LOG` wins.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One request; prints the response body, or `Status <code>` on stderr on error.
    Raw(RawArgs),
    /// Check for, apply or cancel updates.
    Update(UpdateArgs),
}

/// `raw -u URI [-m METHOD] [-d DATA]`.
#[derive(Debug, Args)]
pub struct RawArgs {
    /// The URI, e.g. `/updates/status`.
    #[arg(long, short = 'u')]
    pub uri: String,
    /// The method.
    #[arg(long, short = 'm', default_value = "GET")]
    pub method: String,
    /// The request body.
    #[arg(long, short = 'd')]
    pub data: Option<String>,
}

/// `update check|apply|cancel`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The update verb.
    #[command(subcommand)]
    pub verb: UpdateVerb,
}

/// The update verbs.
#[derive(Debug, Subcommand)]
pub enum UpdateVerb {
    /// Refresh the list of updates and show the status.
    Check(CheckArgs),
    /// Download, write and activate the chosen update.
    Apply(ApplyArgs),
    /// Stop a running prepare, deactivate an applied update, or discard a staged one.
    Cancel(CheckArgs),
}

/// `update check [--json]`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the status document as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How to show the progress of a prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar on stderr when stderr is a terminal, nothing otherwise.
    Auto,
    /// A bar on stderr.
    Bar,
    /// updog's JSON lines on stderr.
    Json,
    /// Nothing.
    None,
}

/// `update apply [--check] [--reboot] [--json] [--progress MODE]`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Refresh first, and do nothing when no update is needed.
    #[arg(long)]
    pub check: bool,
    /// Reboot into the update once it is activated.
    #[arg(long)]
    pub reboot: bool,
    /// Print the final status document as JSON.
    #[arg(long)]
    pub json: bool,
    /// Progress of the download.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
}

impl ApiclientArgs {
    /// The socket to use.
    pub fn socket(&self) -> PathBuf {
        self.socket_path
            .clone()
            .unwrap_or_else(|| super::default_socket(&self.sysroot))
    }

    /// Runs the verb.
    pub fn run(self) -> Result<()> {
        super::init_logging(&self.log_level);
        let socket = self.socket();
        super::runtime()?.block_on(async move {
            match self.command {
                Command::Raw(raw) => raw.run(&socket).await,
                Command::Update(update) => match update.verb {
                    UpdateVerb::Check(args) => args.run_check(&socket).await,
                    UpdateVerb::Apply(args) => args.run(&socket).await,
                    UpdateVerb::Cancel(args) => args.run_cancel(&socket).await,
                },
            }
        })
    }
}

impl RawArgs {
    /// Sends the request and prints the body.
    pub async fn run(self, socket: &Path) -> Result<()> {
        let method = self.method.to_uppercase();
        let body = client::request(socket, &method, &self.uri, self.data).await?;
        if !body.is_empty() {
            println!("{}", body.trim_end());
        }
        Ok(())
    }
}

fn parse(body: &str) -> Result<UpdateStatus> {
    serde_json::from_str(body).context(error::ParseResponseSnafu {
        what: "the update status",
    })
}

fn print_status(body: &str, json: bool) -> Result<()> {
    if json {
        println!("{}", body.trim_end());
    } else {
        print!("{}", update::describe(&parse(body)?));
    }
    Ok(())
}

impl CheckArgs {
    /// `update check`.
    pub async fn run_check(self, socket: &Path) -> Result<()> {
        tracing::info!("refreshing updates...");
        let body = update::check(socket).await?;
        print_status(&body, self.json)
    }

    /// `update cancel`.
    pub async fn run_cancel(self, socket: &Path) -> Result<()> {
        tracing::info!("cancelling...");
        let body = update::cancel(socket).await?;
        print_status(&body, self.json)
    }
}

impl ApplyArgs {
    /// `update apply`.
    pub async fn run(self, socket: &Path) -> Result<()> {
        if self.check {
            tracing::info!("refreshing updates...");
            let body = update::check(socket).await?;
            let status = parse(&body)?;
            if !update::required(&status) {
                tracing::info!(
                    "no update to apply (state {}); nothing to do",
                    status.update_state
                );
                return print_status(&body, self.json);
            }
        }
        let sink: Option<Arc<dyn ProgressSink>> = match self.progress {
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                Some(Arc::new(updog::progress::Bar))
            }
            ProgressMode::Bar => Some(Arc::new(updog::progress::Bar)),
            ProgressMode::Json => Some(Arc::new(updog::JsonLines::new(std::io::stderr()))),
            ProgressMode::Auto | ProgressMode::None => None,
        };
        tracing::info!("downloading and writing the update, then activating it...");
        let body = update::apply(socket, sink).await?;
        print_status(&body, self.json)?;
        if self.reboot {
            tracing::info!("rebooting into the update");
            update::reboot(socket).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent_and_takes_bottlerocket_s_raw_flags() {
        ApiclientArgs::command().debug_assert();
        let args = ApiclientArgs::try_parse_from([
            "apiclient",
            "raw",
            "-u",
            "/actions/refresh-updates",
            "-m",
            "POST",
        ])
        .unwrap();
        assert_eq!(args.socket(), PathBuf::from("/run/api.sock"));
        match args.command {
            Command::Raw(raw) => assert_eq!(
                (raw.uri.as_str(), raw.method.as_str()),
                ("/actions/refresh-updates", "POST")
            ),
            other => panic!("{other:?}"),
        }
    }
}
