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

impl Verb {
    /// The verb as typed.
    fn name(self) -> &'static str {
        match self {
            Verb::ClearInactive => "clear-inactive",
            Verb::MarkInactiveValid => "mark-inactive-valid",
            Verb::UpgradeToInactive => "upgrade-to-inactive",
            Verb::CancelUpgrade => "cancel-upgrade",
            Verb::RollbackToInactive => "rollback-to-inactive",
            Verb::MarkSuccessfulBoot => "mark-successful-boot",
        }
    }
}

impl TransitionArgs {
    pub(crate) fn run(&self, global: &GlobalArgs, verb: Verb) -> Result<()> {
        // Held until the table is written: an install in progress (updog, the update API) holds
        // it too, and its half-written set must not be made bootable or cleared behind its back.
        let _lock = global.lock(verb.name())?;
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
