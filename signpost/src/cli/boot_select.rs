//! `boot-select`: the emulated bootloader's gptprio choice.

use super::GlobalArgs;
use clap::Args;
use signpost::{Result, discover};

/// Arguments of `boot-select`.
#[derive(Debug, Args)]
pub(crate) struct BootSelectArgs {
    /// Print a JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

impl BootSelectArgs {
    pub(crate) fn run(&self, global: &GlobalArgs) -> Result<()> {
        let _lock = global.lock("boot-select")?;
        let mut disk = global.open(true)?;
        disk.repair()?;
        let set = disk.boot_select()?;
        let boot = disk.partitions(set).boot.clone();
        let marker = discover::write_booted_marker(&global.sysroot, boot.unique_guid)?;
        let flags = disk.flags(set);
        if self.json {
            let out = serde_json::json!({
                "set": set,
                "boot_partition": boot.number,
                "boot_unique_guid": boot.unique_guid.to_string(),
                "tries_left": flags.tries_left.get(),
                "successful": flags.successful,
                "marker": marker.display().to_string(),
            });
            println!("{out}");
        } else {
            println!(
                "Booting set {set} (BOOT partition {}, PARTUUID={}; {flags})",
                boot.number, boot.unique_guid
            );
        }
        Ok(())
    }
}
