//! `has-boot-ever-succeeded`: PRIVATE bit 57, printed as `true` or `false`.

use super::GlobalArgs;
use clap::Args;
use signpost::Result;

/// Arguments of `has-boot-ever-succeeded` (only the global flags).
#[derive(Debug, Args)]
pub(crate) struct EverArgs {}

impl EverArgs {
    pub(crate) fn run(&self, global: &GlobalArgs) -> Result<()> {
        let disk = global.open(false)?;
        println!("{}", disk.has_boot_ever_succeeded());
        Ok(())
    }
}
