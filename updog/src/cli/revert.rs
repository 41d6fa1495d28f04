//! `updog update-revert`.

use super::{Context, Outcome};
use crate::error::Result;
use clap::Args;

/// Undo update-apply.
#[derive(Debug, Args)]
pub struct RevertArgs {}

impl RevertArgs {
    pub(crate) fn run(&self, ctx: &Context) -> Result<Outcome> {
        let lock = ctx.lock("update-revert")?;
        let updater = ctx.updater()?;
        match updater.revert(&lock)? {
            None => {
                println!("no applied update to revert");
                Ok(Outcome::NothingToDo)
            }
            Some(set) => {
                println!("set {set} boots next");
                Ok(Outcome::Done)
            }
        }
    }
}
