//! The `updog` command line: one `Args` struct per verb, each with a `run` method.

mod apply;
mod check;
mod revert;
mod update;

use crate::error::{self, Result};
use crate::progress::{Bar, JsonLines, NoProgress, ProgressSink};
use clap::{Parser, Subcommand, ValueEnum};
use snafu::ResultExt;
use std::io::IsTerminal;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// updog: the TUF-verified update client of an A/B image-based host.
#[derive(Debug, Parser)]
#[command(name = "updog", version, about)]
pub struct Cli {
    /// Resolve every path under this directory (a node directory in tests and demos).
    #[arg(long, global = true, default_value = "/")]
    pub sysroot: PathBuf,
    /// The disk holding the partition sets (default: `<sysroot>/dev/disk.img` when the sysroot is
    /// not /, else the disk under /).
    #[arg(long, global = true)]
    pub disk: Option<PathBuf>,
    /// How to show install progress (default: a bar on a terminal, JSON lines otherwise).
    #[arg(long, global = true, value_enum)]
    pub progress: Option<ProgressMode>,
    /// Log filter for stderr (tracing's syntax; RUST_LOG wins when set).
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the update this node would take (exit 3 when there is none).
    CheckUpdate(check::CheckArgs),
    /// Install the chosen update, apply it, and reboot if asked.
    Update(update::UpdateArgs),
    /// Install the chosen update into the inactive set without applying it.
    UpdateImage(update::UpdateImageArgs),
    /// Make the installed update the next to boot (exit 3 when nothing is staged or it is
    /// already applied).
    UpdateApply(apply::ApplyArgs),
    /// Undo update-apply: the running set boots next again (exit 3 when nothing is applied).
    UpdateRevert(revert::RevertArgs),
}

/// Progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// JSON lines on stdout.
    Json,
    /// A bar on stderr.
    Bar,
    /// Nothing.
    None,
}

/// How a verb ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done: exit 0.
    Done,
    /// Nothing to do (no update, nothing staged, already applied, nothing applied): exit 3.
    NothingToDo,
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Done => 0,
            Outcome::NothingToDo => 3,
        }
    }
}

/// What every verb gets.
pub(crate) struct Context {
    pub sysroot: PathBuf,
    pub disk: Option<PathBuf>,
    pub progress: ProgressMode,
    pub cancel: CancellationToken,
    pub runtime: tokio::runtime::Runtime,
}

impl Context {
    pub(crate) fn sink(&self) -> Box<dyn ProgressSink> {
        match self.progress {
            ProgressMode::Json => Box::new(JsonLines::new(std::io::stdout())),
            ProgressMode::Bar => Box::new(Bar),
            ProgressMode::None => Box::new(NoProgress),
        }
    }

    pub(crate) fn updater(&self) -> Result<crate::Updater> {
        crate::Updater::new(&self.sysroot, self.disk.as_deref())
    }

    pub(crate) fn lock(&self, verb: &str) -> Result<crate::UpdateLock> {
        crate::UpdateLock::acquire(
            &crate::Paths::new(&self.sysroot).lock,
            &format!("updog {verb}"),
        )
    }
}

/// Runs the parsed command line. SIGTERM and SIGINT cancel an install cleanly.
pub fn run(cli: Cli) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context(error::RuntimeSnafu)?;
    let cancel = CancellationToken::new();
    {
        let _guard = runtime.enter();
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context(error::RuntimeSnafu)?;
        let mut int = signal(SignalKind::interrupt()).context(error::RuntimeSnafu)?;
        let token = cancel.clone();
        runtime.spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
            token.cancel();
        });
    }
    let progress = cli.progress.unwrap_or(if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Json
    });
    let ctx = Context {
        sysroot: cli.sysroot,
        disk: cli.disk,
        progress,
        cancel,
        runtime,
    };
    match cli.command {
        Command::CheckUpdate(args) => args.run(&ctx),
        Command::Update(args) => args.run(&ctx),
        Command::UpdateImage(args) => args.run(&ctx),
        Command::UpdateApply(args) => args.run(&ctx),
        Command::UpdateRevert(args) => args.run(&ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn verbs_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "updog",
            "update",
            "--image",
            "1.2.0",
            "--now",
            "--reboot",
            "--sysroot",
            "/n",
        ])
        .unwrap();
        assert_eq!(cli.sysroot, PathBuf::from("/n"));
        assert!(matches!(cli.command, Command::Update(_)));
        let cli = Cli::try_parse_from(["updog", "update-image", "--ignore-waves"]).unwrap();
        assert!(matches!(cli.command, Command::UpdateImage(_)));
        let err = Cli::try_parse_from(["updog", "update-image", "--image", "soon"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
