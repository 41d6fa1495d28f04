//! `updog check-update [--all] [--ignore-waves] [--json]`.

use super::{Context, Outcome};
use crate::error::{self, Result};
use crate::updater::Request;
use clap::Args;
use snafu::ResultExt;

/// Show the update this node would take.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// List every update this node may take now, not only the chosen one.
    #[arg(long)]
    all: bool,
    /// Ignore waves.
    #[arg(long)]
    ignore_waves: bool,
    /// Print a JSON array of manifest updates (Bottlerocket's format).
    #[arg(long)]
    json: bool,
}

impl CheckArgs {
    pub(crate) fn run(&self, ctx: &Context) -> Result<Outcome> {
        let updater = ctx.updater()?;
        let request = Request {
            image: None,
            ignore_waves: self.ignore_waves,
        };
        let refreshed = ctx.runtime.block_on(updater.refresh())?;
        let updates = if self.all {
            updater.applicable(&refreshed, &request)?
        } else {
            updater.choose(&refreshed, &request)?.into_iter().collect()
        };
        if self.json {
            let json = serde_json::to_string_pretty(&updates).context(error::SerializeSnafu {
                what: "the updates",
            })?;
            println!("{json}");
        } else if updates.is_empty() {
            println!("no update available");
        } else {
            for u in &updates {
                println!(
                    "{} {} {} (running {})",
                    u.variant, u.arch, u.version, updater.running.version
                );
            }
        }
        Ok(if updates.is_empty() {
            Outcome::NothingToDo
        } else {
            Outcome::Done
        })
    }
}
