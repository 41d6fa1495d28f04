//! `updog update-apply [--reboot]`.

use super::{Context, Outcome};
use crate::Applied;
use crate::error::Result;
use clap::Args;

/// Make the staged update the next to boot.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Reboot into it.
    #[arg(long)]
    reboot: bool,
}

impl ApplyArgs {
    pub(crate) fn run(&self, ctx: &Context) -> Result<Outcome> {
        let lock = ctx.lock("update-apply")?;
        let updater = ctx.updater()?;
        match updater.apply(&lock)? {
            Applied::Nothing => {
                println!("nothing staged to apply");
                Ok(Outcome::NothingToDo)
            }
            // Nothing to do, as update-revert with nothing applied.
            Applied::Already(set) => {
                println!("update in set {set} already applied");
                Ok(Outcome::NothingToDo)
            }
            Applied::Now(set) => {
                println!("set {set} boots next");
                if self.reboot {
                    drop(lock);
                    updater.reboot()?;
                }
                Ok(Outcome::Done)
            }
        }
    }
}
