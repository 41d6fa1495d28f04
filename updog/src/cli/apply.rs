//! `updog update-apply [--reboot]`.

use super::{Context, Outcome};
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
        // Applied already (the inactive set, not yet successful, boots next): nothing to do, as
        // update-revert with nothing applied. Checked under the lock, so nothing changes it.
        let disk = updater.open_disk()?;
        let applied = disk
            .inactive_set()
            .filter(|&set| disk.next_boot() == Some(set) && !disk.flags(set).successful);
        drop(disk);
        if let Some(set) = applied {
            println!("update in set {set} already applied");
            return Ok(Outcome::NothingToDo);
        }
        match updater.apply(&lock)? {
            None => {
                println!("nothing staged to apply");
                Ok(Outcome::NothingToDo)
            }
            Some(set) => {
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
