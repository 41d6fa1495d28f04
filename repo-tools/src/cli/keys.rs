//! `repo-tool key ...`

use clap::Subcommand;
use repo_tools::Result;
use repo_tools::keys::{self, KeyType};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Generate a private key (PKCS#8 PEM, mode 0600) and print its key id.
    Generate {
        /// The key type.
        #[arg(long = "type", value_enum, default_value_t = KeyType::Ed25519)]
        kind: KeyType,
        /// Where to write the key; never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print a key file's TUF key id.
    Id {
        /// The key file.
        key: PathBuf,
    },
}

impl KeyCommand {
    pub(super) fn run(self) -> Result<()> {
        let id = match self {
            KeyCommand::Generate { kind, out } => keys::generate(kind, &out)?,
            KeyCommand::Id { key } => keys::key_id(&key)?,
        };
        println!("{id}");
        Ok(())
    }
}
