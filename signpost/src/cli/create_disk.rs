//! `create-disk`: lay out a fresh disk image.

use super::GlobalArgs;
use clap::{Args, CommandFactory};
use signpost::{Layout, Result, SignpostDisk, create_disk, create_image_file};

/// Arguments of `create-disk`.
#[derive(Debug, Args)]
pub(crate) struct CreateDiskArgs {
    /// Size of a new image file in MiB (an existing block device keeps its size).
    #[arg(long, value_name = "MIB")]
    size_mib: Option<u64>,
    /// Size of each BOOT partition in MiB.
    #[arg(long, value_name = "MIB", default_value_t = Layout::default().boot_mib)]
    boot_mib: u64,
    /// Size of each ROOT partition in MiB.
    #[arg(long, value_name = "MIB", default_value_t = Layout::default().root_mib)]
    root_mib: u64,
    /// Size of each HASH partition in MiB.
    #[arg(long, value_name = "MIB", default_value_t = Layout::default().hash_mib)]
    hash_mib: u64,
    /// Size of each RESERVED partition in MiB (0: none).
    #[arg(long, value_name = "MIB", default_value_t = Layout::default().reserved_mib)]
    reserved_mib: u64,
    /// Size of PRIVATE in MiB.
    #[arg(long, value_name = "MIB", default_value_t = Layout::default().private_mib)]
    private_mib: u64,
    /// Size of DATA in MiB (default: the rest of the disk).
    #[arg(long, value_name = "MIB")]
    data_mib: Option<u64>,
    /// Overwrite the partition table of an existing image or device.
    #[arg(long)]
    force: bool,
}

impl CreateDiskArgs {
    pub(crate) fn run(&self, global: &GlobalArgs) -> Result<()> {
        let Some(path) = &global.disk else {
            super::Cli::command()
                .error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "create-disk needs --disk PATH",
                )
                .exit();
        };
        let _lock = global.lock("create-disk")?;
        let layout = Layout {
            boot_mib: self.boot_mib,
            root_mib: self.root_mib,
            hash_mib: self.hash_mib,
            reserved_mib: self.reserved_mib,
            private_mib: self.private_mib,
            data_mib: self.data_mib,
        };
        let size = self.size_mib.map(|mib| mib.saturating_mul(1 << 20));
        let (mut file, created) =
            create_image_file(path, size, layout.needed_mib() << 20, self.force)?;
        let name = path.display().to_string();
        if let Err(e) = create_disk(&mut file, &name, &layout) {
            if created {
                // Leave nothing half-made behind.
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        let disk = SignpostDisk::open(file, name)?;
        println!(
            "Created '{}': set A bootable (BOOT partition {}), set B empty (BOOT partition {}), PRIVATE partition {}",
            path.display(),
            disk.partitions(signpost::SetId::A).boot.number,
            disk.partitions(signpost::SetId::B).boot.number,
            disk.private_partition().number,
        );
        Ok(())
    }
}
