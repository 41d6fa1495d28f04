//! signpost: GPT A/B partition sets, their attribute bits, every state transition and the
//! bootloader's choice (gptprio), as Bottlerocket's signpost does them.
//!
//! A disk holds two partition sets, A and B (BOOT, ROOT, HASH, optional RESERVED) and a
//! PRIVATE partition. The bootloader boots the set whose BOOT entry wins the gptprio choice;
//! signpost's verbs move the bits so that a new set gets exactly one try and a failed try falls
//! back to the set that last booted successfully.
//!
//! All disk access goes through the [`Disk`] trait (never a path), and every change is one
//! whole-table write in a crash-safe order: primary entries, primary header, sync, backup
//! entries, backup header, sync. Both copies are checked on every read; the valid one wins and
//! [`SignpostDisk::repair`] rewrites the other.
//!
//! ```
//! use signpost::{Layout, MemDisk, SetId, SignpostDisk, create_disk};
//!
//! let mut disk = MemDisk::new(128 << 20);
//! create_disk(&mut disk, "disk.img", &Layout::default())?;
//!
//! let mut sd = SignpostDisk::open(disk, "disk.img")?;
//! assert_eq!(sd.boot_select()?, SetId::A); // the bootloader's choice; A is now active
//! sd.mark_successful_boot()?;
//!
//! // An update was written to set B's partitions (see `partitions(SetId::B)`); give it a try.
//! sd.mark_inactive_valid()?;
//! sd.upgrade_to_inactive()?;
//! assert_eq!(sd.next_boot(), Some(SetId::B));
//!
//! // B boots once and is not marked successful: the next boot falls back to A.
//! assert_eq!(sd.boot_select()?, SetId::B);
//! assert_eq!(sd.next_boot(), Some(SetId::A));
//! # Ok::<(), signpost::Error>(())
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p signpost` runs the unit tests, the crash-replay tests (every prefix of
//! a transition's writes and thousands of seeded random crashes, each checked to read back as
//! the old or the new table with a bootable set), a proptest over random verb sequences and
//! boot outcomes, the CLI tests (among them the update lock's, [`lock`]), and the tests against
//! `sgdisk` and a loop device. The last two need `gdisk` and root; they are skipped with a
//! message outside CI and fail under `CI=true` when a tool is missing.
#![deny(missing_docs)]

pub mod attrs;
mod create;
pub mod discover;
mod disk;
mod error;
mod gptprio;
pub mod lock;
mod sets;
mod signpost_disk;
mod status;
mod table;
mod transitions;

pub use attrs::{BootFlags, Priority, Tries};
pub use create::{Layout, create_disk, create_image_file};
pub use disk::{Disk, MemDisk};
pub use error::{Error, Result};
pub use gptprio::choose as gptprio_choose;
pub use sets::{ParseSetIdError, PartitionInfo, PartitionType, SetId, SetPartitions};
pub use signpost_disk::SignpostDisk;
pub use status::{PartitionStatus, SetStatus, Status, TableStatus};
pub use table::{CopyState, SECTOR_SIZE, Table, TableHealth};

/// gptman, whose entry type [`Table::entries`] yields.
pub use gptman;
