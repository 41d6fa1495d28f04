//! The command line of the protocol (clap derive). The options are global, so they may come
//! before or after the command, as the suite and other clients write them.

use crate::error::{self, Result};
use clap::{Parser, Subcommand};
use snafu::OptionExt;
use std::path::PathBuf;

/// A TUF client speaking the tuf-conformance command-line protocol.
#[derive(Debug, Parser)]
#[command(name = "tuf-conformance-client", version)]
pub struct Args {
    /// Directory of the trusted metadata (root.json, timestamp.json, ...).
    #[arg(long, global = true, value_name = "DIR")]
    pub metadata_dir: Option<PathBuf>,
    /// URL of the repository's metadata.
    #[arg(long, global = true, value_name = "URL")]
    pub metadata_url: Option<String>,
    /// Target path to download (repeatable; downloaded in order).
    #[arg(long = "target-name", global = true, value_name = "NAME")]
    pub target_names: Vec<String>,
    /// Directory the downloaded targets are stored in.
    #[arg(long, global = true, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// URL of the repository's targets.
    #[arg(long, global = true, value_name = "URL")]
    pub target_base_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The protocol's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store the trusted root (no network).
    Init {
        /// The initial trusted root.json.
        trusted_root: PathBuf,
    },
    /// Update the trusted metadata by the TUF client workflow.
    Refresh,
    /// Refresh, then download each --target-name into --target-dir.
    Download,
}

impl Args {
    /// Runs the command; the message of an error is one line.
    pub fn run(self) -> Result<String> {
        let metadata_dir = |command| {
            self.metadata_dir
                .clone()
                .context(error::MissingOptionSnafu {
                    command,
                    option: "--metadata-dir",
                })
        };
        let metadata_url = |command| {
            self.metadata_url
                .clone()
                .context(error::MissingOptionSnafu {
                    command,
                    option: "--metadata-url",
                })
        };
        match &self.command {
            Command::Init { trusted_root } => {
                let dir = metadata_dir("init")?;
                crate::init(&dir, trusted_root)?;
                Ok(format!("initialised {}", dir.display()))
            }
            Command::Refresh => {
                let dir = metadata_dir("refresh")?;
                let url = metadata_url("refresh")?;
                let trusted = block_on(crate::refresh(&dir, &url, None))??;
                let repo = &trusted.repo;
                Ok(format!(
                    "trusted root {} timestamp {} snapshot {} targets {}",
                    repo.root().signed.version,
                    repo.timestamp().signed.version,
                    repo.snapshot().signed.version,
                    repo.targets().signed.version
                ))
            }
            Command::Download => {
                let dir = metadata_dir("download")?;
                let url = metadata_url("download")?;
                let target_dir = self.target_dir.clone().context(error::MissingOptionSnafu {
                    command: "download",
                    option: "--target-dir",
                })?;
                let base = self
                    .target_base_url
                    .clone()
                    .context(error::MissingOptionSnafu {
                        command: "download",
                        option: "--target-base-url",
                    })?;
                if self.target_names.is_empty() {
                    return error::MissingOptionSnafu {
                        command: "download",
                        option: "--target-name",
                    }
                    .fail();
                }
                let done = block_on(crate::download(
                    &dir,
                    &url,
                    &base,
                    &target_dir,
                    &self.target_names,
                ))??;
                let lines: Vec<String> = done
                    .iter()
                    .map(|d| match d {
                        crate::Downloaded::Fetched(p) => format!("downloaded {}", p.display()),
                        crate::Downloaded::AlreadyPresent(p) => {
                            format!("already present {}", p.display())
                        }
                    })
                    .collect();
                Ok(lines.join("\n"))
            }
        }
    }
}

/// Runs `future` on a current-thread runtime.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| error::Error::Runtime { source })?;
    Ok(runtime.block_on(future))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn options_may_come_before_or_after_the_command() {
        let a = Args::try_parse_from([
            "c",
            "--metadata-url",
            "http://h/m",
            "--metadata-dir",
            "/d",
            "--target-name",
            "a",
            "--target-name",
            "b/c",
            "--target-dir",
            "/t",
            "--target-base-url",
            "http://h/t",
            "download",
        ])
        .unwrap();
        assert_eq!(a.target_names, ["a", "b/c"]);
        let b = Args::try_parse_from(["c", "init", "--metadata-dir", "/d", "root.json"]).unwrap();
        assert_eq!(b.metadata_dir.unwrap(), PathBuf::from("/d"));
    }

    #[test]
    fn a_missing_option_is_named() {
        let a = Args::try_parse_from(["c", "--metadata-dir", "/d", "refresh"]).unwrap();
        let err = a.run().unwrap_err().to_string();
        assert_eq!(err, "Failed to run 'refresh': --metadata-url is required");
    }
}
