//! `repo-tool refresh`, `validate`, `check-expirations`, `waves ...`

use clap::Subcommand;
use repo_tools::Result;
use repo_tools::publish::load_manifest;
use repo_tools::sign::sign_and_commit;
use repo_tools::time::{now, parse_when};
use repo_tools::timestamp::refresh_timestamp;
use repo_tools::validate;
use semver::Version;
use std::path::PathBuf;
use tough::ExpirationEnforcement;

#[derive(Debug, clap::Args)]
pub(super) struct RefreshArgs {
    #[command(flatten)]
    repo: super::RepoArgs,
    #[command(flatten)]
    sign: super::SignArgs,
    /// Write a new timestamp.json alone (new version and expiry, the same snapshot), signed with
    /// the timestamp key(s) only: every --key must be a timestamp key of the root.
    #[arg(long, conflicts_with_all = ["snapshot_expires", "targets_expires"])]
    timestamp_only: bool,
}

impl RefreshArgs {
    pub(super) async fn run(self) -> Result<()> {
        let dir = self.repo.dir()?;
        let _lock = super::lock(&dir, false)?;
        let now = now();
        if self.timestamp_only {
            let written = refresh_timestamp(
                &dir,
                self.repo.trusted_root.as_deref(),
                &self.sign.keys,
                parse_when(&self.sign.timestamp_expires, now)?,
                now,
            )
            .await?;
            println!(
                "timestamp version {}, expires {}",
                written.version, written.expires
            );
            return Ok(());
        }
        let (editor, previous) = dir.editor(self.repo.trusted_root.as_deref()).await?;
        let written = sign_and_commit(
            &dir,
            editor,
            previous.as_ref(),
            None,
            &self.sign.keys,
            self.sign.expiries(now)?,
            now,
        )
        .await?;
        println!("metadata version {}", written.metadata);
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct ValidateArgs {
    /// The repository's base directory.
    #[arg(long, value_name = "DIR", required_unless_present = "metadata_url")]
    repo: Option<PathBuf>,
    /// The variant.
    #[arg(long, required_unless_present = "metadata_url")]
    variant: Option<String>,
    /// The architecture.
    #[arg(long, required_unless_present = "metadata_url")]
    arch: Option<String>,
    /// A file:// metadata URL instead of a directory. repo-tool reads no http(s):// URLs: check
    /// a served repository with a client (`updog check-update` on a node configured for it).
    #[arg(long, requires_all = ["targets_url", "trusted_root"], conflicts_with = "repo", value_parser = file_url)]
    metadata_url: Option<url::Url>,
    /// The file:// targets URL that goes with --metadata-url.
    #[arg(long, value_parser = file_url)]
    targets_url: Option<url::Url>,
    /// The trusted root (default: the repository's own 1.root.json).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

/// A `file://` URL; anything else is refused while the arguments are parsed (tough is built
/// here without its HTTP transport).
fn file_url(text: &str) -> std::result::Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if url.scheme() != "file" {
        return Err(format!(
            "repo-tool reads repositories from file:// URLs only, not {}://",
            url.scheme()
        ));
    }
    Ok(url)
}

impl ValidateArgs {
    pub(super) async fn run(self) -> Result<()> {
        let report = match (
            self.metadata_url,
            self.targets_url,
            self.trusted_root.as_deref(),
        ) {
            (Some(metadata), Some(targets), Some(root)) => {
                validate::validate(root, metadata, targets).await?
            }
            _ => {
                let dir = repo_tools::repo::RepoDir::parse(
                    self.repo.unwrap_or_default(),
                    self.variant.as_deref().unwrap_or_default(),
                    self.arch.as_deref().unwrap_or_default(),
                )?;
                validate::validate_dir(&dir, self.trusted_root.as_deref()).await?
            }
        };
        println!(
            "valid: {} targets ({} bytes) verified, {} updates in manifest.json",
            report.targets, report.bytes, report.updates
        );
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct CheckExpirationsArgs {
    #[command(flatten)]
    repo: super::RepoArgs,
    /// Fail if a role expires within this window.
    #[arg(long, default_value = "3 days")]
    within: String,
    /// Check only this role (repeat for more; default: every role), e.g. `--role root
    /// --within "60 days"` for an early warning on the root that the weekly timestamp would
    /// otherwise always trip.
    #[arg(long, value_parser = ["root", "targets", "snapshot", "timestamp"])]
    role: Vec<String>,
}

impl CheckExpirationsArgs {
    pub(super) async fn run(self) -> Result<()> {
        let now = now();
        let dir = self.repo.dir()?;
        let mut roles = validate::expirations(&dir, self.repo.trusted_root.as_deref()).await?;
        if !self.role.is_empty() {
            roles.retain(|(role, _)| self.role.contains(role));
        }
        for (role, expires) in &roles {
            println!("{role:<9} expires {expires}");
        }
        validate::check_expirations(&roles, parse_when(&self.within, now)?)
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum WavesCommand {
    /// Print a table of a release's waves and write an SVG chart of seeds ready over time.
    Plot {
        #[command(flatten)]
        repo: super::RepoArgs,
        /// The release (default: the newest).
        #[arg(long)]
        version: Option<Version>,
        /// Where to write the SVG chart.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
}

impl WavesCommand {
    pub(super) async fn run(self) -> Result<()> {
        let WavesCommand::Plot { repo, version, svg } = self;
        let dir = repo.dir()?;
        let trusted = dir.trusted_root(repo.trusted_root.as_deref())?;
        let loaded = dir.load(&trusted, ExpirationEnforcement::Unsafe).await?;
        let manifest = load_manifest(Some(&loaded)).await?;
        let update = manifest
            .updates()
            .iter()
            .filter(|u| u.is_for(dir.variant.as_str(), dir.arch.as_str()))
            .filter(|u| version.as_ref().is_none_or(|v| *v == u.version))
            .max_by(|a, b| a.version.cmp(&b.version))
            .ok_or_else(|| repo_tools::Error::NoSuchRelease {
                variant: dir.variant.to_string(),
                arch: dir.arch.to_string(),
                version: version.map_or("(any)".to_string(), |v| v.to_string()),
            })?;
        println!("{} {} {}", update.variant, update.arch, update.version);
        print!("{}", repo_tools::plot::table(&update.waves));
        if let Some(path) = svg {
            let title = format!(
                "{} {} {}: seeds ready over time",
                update.variant, update.arch, update.version
            );
            std::fs::write(&path, repo_tools::plot::svg(&update.waves, &title)).map_err(
                |source| repo_tools::Error::WriteFile {
                    path: path.clone(),
                    source,
                },
            )?;
            println!("wrote {}", path.display());
        }
        Ok(())
    }
}
