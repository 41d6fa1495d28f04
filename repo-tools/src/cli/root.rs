//! `repo-tool root ...`

use clap::Subcommand;
use repo_tools::Result;
use repo_tools::root::{self, parse_role};
use repo_tools::time::{now, parse_when};
use std::num::NonZeroU64;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(super) enum RootCommand {
    /// Write a new unsigned root.json (version 1, consistent snapshots).
    Init {
        /// The root file to create.
        root: PathBuf,
        /// When it expires (RFC 3339 or an offset).
        #[arg(long, default_value = "52 weeks")]
        expires: String,
    },
    /// Add a key to roles (by its private key file); voids existing signatures.
    AddKey {
        /// The root file.
        root: PathBuf,
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// A role the key signs for: root, snapshot, targets, timestamp (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Remove a key id from roles, or from every role and the key list.
    RemoveKey {
        /// The root file.
        root: PathBuf,
        /// The key id (hex).
        #[arg(long)]
        key_id: String,
        /// Roles to remove it from (default: all, and the key list).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Set how many signatures a role needs.
    SetThreshold {
        /// The root file.
        root: PathBuf,
        /// The role.
        role: String,
        /// The threshold (at least 1).
        threshold: u64,
    },
    /// Set when root expires.
    Expire {
        /// The root file.
        root: PathBuf,
        /// RFC 3339 or an offset such as "52 weeks".
        when: String,
    },
    /// Set root's version (a rotation writes version N+1).
    SetVersion {
        /// The root file.
        root: PathBuf,
        /// The version.
        version: NonZeroU64,
    },
    /// Sign root with keys; with --cross-sign, also with the previous root's keys.
    Sign {
        /// The root file.
        root: PathBuf,
        /// Private key files (repeatable).
        #[arg(long = "key", value_name = "FILE", required = true)]
        keys: Vec<PathBuf>,
        /// The previous root, whose threshold must also be met (rotation).
        #[arg(long, value_name = "FILE")]
        cross_sign: Option<PathBuf>,
    },
    /// Show a root's version, expiry, keys and thresholds.
    Show {
        /// The root file.
        root: PathBuf,
    },
    /// Publish a signed new root as N+1.root.json and re-sign the other roles with --key.
    Rotate {
        #[command(flatten)]
        repo: super::RepoArgs,
        /// The new root, signed by the previous root's threshold and its own.
        #[arg(long, value_name = "FILE")]
        new_root: PathBuf,
        #[command(flatten)]
        sign: super::SignArgs,
    },
}

impl RootCommand {
    pub(super) async fn run(self) -> Result<()> {
        match self {
            RootCommand::Init { root, expires } => {
                root::init(&root, parse_when(&expires, now())?)?;
                println!("{}", root.display());
            }
            RootCommand::AddKey { root, key, roles } => {
                let roles = roles
                    .iter()
                    .map(|r| parse_role(r))
                    .collect::<Result<Vec<_>>>()?;
                println!("{}", root::add_key(&root, &key, &roles)?);
            }
            RootCommand::RemoveKey {
                root,
                key_id,
                roles,
            } => {
                let roles = roles
                    .iter()
                    .map(|r| parse_role(r))
                    .collect::<Result<Vec<_>>>()?;
                root::remove_key(&root, &key_id, &roles)?;
            }
            RootCommand::SetThreshold {
                root,
                role,
                threshold,
            } => root::set_threshold(&root, parse_role(&role)?, threshold)?,
            RootCommand::Expire { root, when } => {
                root::set_expires(&root, parse_when(&when, now())?)?
            }
            RootCommand::SetVersion { root, version } => root::set_version(&root, version)?,
            RootCommand::Sign {
                root,
                keys,
                cross_sign,
            } => root::sign(&root, &keys, cross_sign.as_deref()).await?,
            RootCommand::Show { root } => print!("{}", root::describe(&root::load(&root)?)),
            RootCommand::Rotate {
                repo,
                new_root,
                sign,
            } => {
                let dir = repo.dir()?;
                let _lock = super::lock(&dir, false)?;
                let now = now();
                let (version, written) = repo_tools::publish::rotate_root(
                    &dir,
                    repo.trusted_root.as_deref(),
                    &new_root,
                    &sign.keys,
                    sign.expiries(now)?,
                    now,
                )
                .await?;
                println!("root {version}, metadata version {}", written.metadata);
            }
        }
        Ok(())
    }
}
