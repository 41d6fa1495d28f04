//! Command-line parsing: one module per subcommand, each with an `Args` struct and `run`.

mod boot_select;
mod create_disk;
mod ever;
mod status;
mod transition;

use clap::{Args, Parser, Subcommand};
use signpost::discover::{self, ActiveSource};
use signpost::lock::{UpdateLock, lock_path};
use signpost::{Result, SetId, SignpostDisk};
use std::fs::File;
use std::path::PathBuf;

/// Manage the A/B partition sets of an image-based host's GPT disk.
#[derive(Debug, Parser)]
#[command(name = "signpost", version)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// The disk (block device or image file); found under '/' through /sys when omitted.
    #[arg(long, global = true, value_name = "PATH")]
    disk: Option<PathBuf>,
    /// Root of the node's filesystem; run/booted-set and proc/cmdline are read under it.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,
    /// The booted set, overriding discovery.
    #[arg(long, global = true, value_name = "A|B")]
    active_set: Option<SetId>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show both sets, the active set and the set that boots next.
    Status(status::StatusArgs),
    /// Make the inactive set unbootable (priority 0, tries 0, not successful).
    ClearInactive(transition::TransitionArgs),
    /// Give the inactive set one try (after its images were written and verified).
    MarkInactiveValid(transition::TransitionArgs),
    /// Boot the inactive set next, once (priority 2); the active set stays the fallback.
    UpgradeToInactive(transition::TransitionArgs),
    /// Undo upgrade-to-inactive: the inactive set priority 0, the active priority 2.
    CancelUpgrade(transition::TransitionArgs),
    /// Boot the (bootable) inactive set next: priority 2, the active priority 1.
    RollbackToInactive(transition::TransitionArgs),
    /// Mark the active set successful and record that a boot has succeeded on this disk.
    MarkSuccessfulBoot(transition::TransitionArgs),
    /// Print whether a boot has ever succeeded on this disk (true/false).
    HasBootEverSucceeded(ever::EverArgs),
    /// Make the bootloader's choice: spend a try, write the table, record the booted set.
    BootSelect(boot_select::BootSelectArgs),
    /// Lay out a fresh disk image with sets A and B, PRIVATE and DATA.
    CreateDisk(create_disk::CreateDiskArgs),
}

impl Cli {
    pub(crate) fn run(self) -> Result<()> {
        let g = &self.global;
        match self.command {
            Command::Status(args) => args.run(g),
            Command::ClearInactive(args) => args.run(g, transition::Verb::ClearInactive),
            Command::MarkInactiveValid(args) => args.run(g, transition::Verb::MarkInactiveValid),
            Command::UpgradeToInactive(args) => args.run(g, transition::Verb::UpgradeToInactive),
            Command::CancelUpgrade(args) => args.run(g, transition::Verb::CancelUpgrade),
            Command::RollbackToInactive(args) => args.run(g, transition::Verb::RollbackToInactive),
            Command::MarkSuccessfulBoot(args) => args.run(g, transition::Verb::MarkSuccessfulBoot),
            Command::HasBootEverSucceeded(args) => args.run(g),
            Command::BootSelect(args) => args.run(g),
            Command::CreateDisk(args) => args.run(g),
        }
    }
}

impl GlobalArgs {
    /// `--disk`, or the disk under `/`.
    fn disk_path(&self) -> Result<PathBuf> {
        match &self.disk {
            Some(path) => Ok(path.clone()),
            None => discover::find_disk(&self.sysroot),
        }
    }

    /// Takes the update lock under the sysroot (shared with updog and the update API) for
    /// `verb`, or fails at once naming the holder.
    fn lock(&self, verb: &str) -> Result<UpdateLock> {
        UpdateLock::acquire(&lock_path(&self.sysroot), &format!("signpost {verb}"))
    }

    /// Opens and checks the disk.
    fn open(&self, writable: bool) -> Result<SignpostDisk<File>> {
        let path = self.disk_path()?;
        let file = discover::open_disk(&path, writable)?;
        SignpostDisk::open(file, path.display().to_string())
    }

    /// Finds the active set and records it on `disk`.
    fn find_active(&self, disk: &mut SignpostDisk<File>) -> Result<ActiveSource> {
        let (set, source) = discover::find_active_set(disk, &self.sysroot, self.active_set)?;
        tracing::debug!(%set, %source, "active set");
        disk.set_active(Some(set));
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
