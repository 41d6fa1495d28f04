//! Command-line arguments: one module per group of subcommands, each with a `run` method.

mod keys;
mod maintain;
mod publish;
mod root;

use clap::{Parser, Subcommand};
use jiff::Timestamp;
use repo_tools::Result;
use repo_tools::lock::RepoLock;
use repo_tools::repo::RepoDir;
use repo_tools::sign::Expiries;
use repo_tools::time::parse_when;
use std::path::PathBuf;

/// Publishes signed TUF update repositories: keys, root.json, releases, waves, refresh,
/// validation and expiry checks.
#[derive(Debug, Parser)]
#[command(name = "repo-tool", version, about, max_term_width = 100)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate signing keys and show their ids.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Create, edit, sign and rotate root.json.
    #[command(subcommand)]
    Root(root::RootCommand),
    /// Publish a release: images, manifest entry, waves and migrations, signed.
    Publish(Box<publish::PublishArgs>),
    /// Change a published release: pull it, set max_version, change its waves.
    #[command(subcommand)]
    Release(publish::ReleaseCommand),
    /// Re-sign timestamp, snapshot and targets with new versions and expiries (or, with
    /// --timestamp-only, timestamp alone).
    Refresh(maintain::RefreshArgs),
    /// Load the repository as a client would and verify every target.
    Validate(maintain::ValidateArgs),
    /// Fail if any role expires within a window.
    CheckExpirations(maintain::CheckExpirationsArgs),
    /// Show how a release's waves reach the fleet.
    #[command(subcommand)]
    Waves(maintain::WavesCommand),
}

impl Args {
    pub(crate) async fn run(self) -> Result<()> {
        match self.command {
            Command::Key(cmd) => cmd.run(),
            Command::Root(cmd) => cmd.run().await,
            Command::Publish(args) => args.run().await,
            Command::Release(cmd) => cmd.run().await,
            Command::Refresh(args) => args.run().await,
            Command::Validate(args) => args.run().await,
            Command::CheckExpirations(args) => args.run().await,
            Command::Waves(cmd) => cmd.run().await,
        }
    }
}

/// Where the repository is.
#[derive(Debug, clap::Args)]
struct RepoArgs {
    /// The repository's base directory (served as the repository's base URL).
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The variant, e.g. aws-k8s-1.31.
    #[arg(long)]
    variant: String,
    /// The architecture, e.g. x86_64.
    #[arg(long)]
    arch: String,
    /// The trusted root to load the repository from (default: its own 1.root.json).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

impl RepoArgs {
    /// The repository; refuses a variant or arch that is not a plain name, before anything is
    /// read or written.
    fn dir(&self) -> Result<RepoDir> {
        RepoDir::parse(&self.repo, &self.variant, &self.arch)
    }
}

/// Takes the lock of a repository a command changes, before the command reads it; `create` for
/// the command that may create the repository. Says so on stderr, and waits, while another
/// repo-tool holds it.
fn lock(dir: &RepoDir, create: bool) -> Result<RepoLock> {
    RepoLock::acquire(dir, create, |line| eprintln!("{line}"))
}

/// Keys and expiries for a signing operation.
#[derive(Debug, clap::Args)]
struct SignArgs {
    /// A private key file (PKCS#8 PEM); repeat for each key a role's threshold needs.
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// When timestamp.json expires (RFC 3339, or an offset such as "7 days").
    #[arg(long, default_value = "7 days")]
    timestamp_expires: String,
    /// When snapshot.json expires.
    #[arg(long, default_value = "14 days")]
    snapshot_expires: String,
    /// When targets.json expires.
    #[arg(long, default_value = "14 days")]
    targets_expires: String,
}

impl SignArgs {
    fn expiries(&self, now: Timestamp) -> Result<Expiries> {
        Ok(Expiries {
            timestamp: parse_when(&self.timestamp_expires, now)?,
            snapshot: parse_when(&self.snapshot_expires, now)?,
            targets: parse_when(&self.targets_expires, now)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arguments_are_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn a_timestamp_only_refresh_takes_no_snapshot_or_targets_expiry() {
        let parse = |extra: &[&str]| {
            let mut args = test_tools::tuf::on_repo(
                &["repo-tool", "refresh"],
                &[
                    "--key",
                    "keys/timestamp.pem",
                    "--timestamp-only",
                    "--timestamp-expires",
                    "2 days",
                ],
            );
            args.extend(extra);
            Args::try_parse_from(args)
        };
        assert!(parse(&[]).is_ok());
        for flag in ["--snapshot-expires", "--targets-expires"] {
            let err = parse(&[flag, "3 days"]).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{err}"
            );
        }
    }

    #[test]
    fn validate_takes_file_urls_and_refuses_http_ones_while_parsing() {
        let parse = |scheme: &str| {
            Args::try_parse_from([
                "repo-tool",
                "validate",
                "--metadata-url",
                &format!("{scheme}://h/demo/x86_64/"),
                "--targets-url",
                "file:///srv/repo/targets/",
                "--trusted-root",
                "root.json",
            ])
        };
        assert!(parse("file").is_ok());
        for scheme in ["http", "https"] {
            let err = parse(scheme).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
            assert!(
                err.to_string()
                    .contains(&format!("file:// URLs only, not {scheme}://")),
                "{err}"
            );
        }
    }
}
