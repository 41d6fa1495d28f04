//! `migrator confirm`: the boot-success hook.

use super::{Common, show};

/// Flags of `confirm`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {}

impl Args {
    pub(crate) fn run(self, common: &Common) -> migrator::Result<()> {
        let root = common.datastore();
        migrator::confirm(&root)?;
        println!("Confirmed the datastore in '{}'", show(&root));
        Ok(())
    }
}
