//! The real machine end to end: a GPT disk made by the project's own tooling boots under
//! qemu (software emulation) with Debian's kernel, real dm-verity and real partitions.
//!
//! - The initramfs plays firmware and bootloader: `signpost boot-select` on `/dev/vda` (the
//!   gptprio choice the emulated bootloader uses, a try spent on disk), `node-sim verity-table`
//!   (the chosen BOOT's `verity.params` as a dm table, restart on corruption), `dmsetup`, a
//!   read-only mount of the verified ROOT and `switch_root`.
//! - ROOT's init plays systemd: DATA mounted on `/var`, `node-sim services` (migrator, health
//!   gate, mark-successful-boot), then the boot's step (`updog update-image` and
//!   `update-apply` from an offline repository on a second disk), then power-off.
//! - The host checks the serial console's markers, DATA (dumped with debugfs) and the GPT
//!   attributes (`sgdisk -i`) between boots.
//!
//! ```no_run
//! use vm_test::{Lab, Step};
//! let Some(lab) = Lab::new()? else { return Ok(()) };
//! let first = lab.release("1.0.0", "", &[])?;
//! let mut machine = lab.machine("node", &first, &[])?;
//! let boot = machine.boot(Step::None)?;
//! assert!(boot.has("services: exit 0"), "{}", boot.log.display());
//! # Ok::<(), vm_test::Error>(())
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p vm-test` (needs qemu-system-x86, busybox-static, cpio, dmsetup,
//! gdisk, e2fsprogs and the kernel unpacked by `.ci/fetch-vm-kernel`; skipped outside CI when
//! missing). docs/vm-test.md runs one scenario by hand and explains the serial log.
#![deny(missing_docs)]

mod error;
pub mod guest;
pub mod kernel;
mod lab;
mod machine;

pub use error::{Error, Result};
pub use kernel::Kernel;
pub use lab::{ARCH, KEEP_ENV, Lab, TOOLS, VARIANT};
pub use machine::{BOOT_TIMEOUT_SECS, Boot, Data, Machine, SetFlags, Step};
