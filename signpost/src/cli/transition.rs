//! The verbs that change the bits: each needs the active set and writes the whole table or
//! nothing.

use super::GlobalArgs;
use clap::Args;
use signpost::Result;

/// Arguments of a transition verb (only the global flags).
#[derive(Debug, Args)]
pub(crate) struct TransitionArgs {}

/// Which transition.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verb {
    ClearInactive,
    MarkInactiveValid,
    UpgradeToInactive,
    CancelUpgrade,
    RollbackToInactive,
    MarkSuccessfulBoot,
}

impl TransitionArgs {
    pub(crate) fn run(&self, global: &GlobalArgs, verb: Verb) -> Result<()> {
        let mut disk = global.open(true)?;
        global.find_active(&mut disk)?;
        match verb {
            Verb::ClearInactive => disk.clear_inactive(),
            Verb::MarkInactiveValid => disk.mark_inactive_valid(),
            Verb::UpgradeToInactive => disk.upgrade_to_inactive(),
            Verb::CancelUpgrade => disk.cancel_upgrade(),
            Verb::RollbackToInactive => disk.rollback_to_inactive(),
            Verb::MarkSuccessfulBoot => disk.mark_successful_boot(),
        }
    }
}
