//! One boot of a node in a directory, in the order a real node runs it: the bootloader's choice
//! (gptprio, tries spent before booting), dm-verity's check of ROOT against HASH with the
//! parameters in BOOT, the booted image's files exposed, the migrator, the health gate, and
//! mark-successful-boot with the datastore confirmed.

use crate::error::{self, Result};
use crate::health;
use crate::record::{self, BootRecord, Outcome};
use image_builder::{ImageRegion, RootInfo};
use signpost::{SetId, SetPartitions, SignpostDisk};
use snafu::ResultExt;
use std::fs::File;
use std::path::{Path, PathBuf};
use update_metadata::error::error_chain;

/// Files of the booted image the node exposes under its sysroot.
const EXPOSED: [&str; 3] = [
    "etc/os-release",
    "usr/share/updog/root.json",
    "etc/twinset/health-checks.toml",
];

/// A node living in a directory.
#[derive(Debug, Clone)]
pub struct Node {
    /// The sysroot.
    pub sysroot: PathBuf,
    /// The disk image.
    pub disk: PathBuf,
}

impl Node {
    /// The node at `sysroot`, whose disk is `<sysroot>/dev/disk.img` unless given.
    pub fn open(sysroot: &Path, disk: Option<&Path>) -> Result<Node> {
        // Absolute: the health checks run in the sysroot and get it in TWINSET_SYSROOT, where
        // a relative path would name something else.
        let absolute =
            |path: &Path| std::path::absolute(path).context(error::AbsoluteSnafu { path });
        let sysroot = absolute(sysroot)?;
        let disk = match disk {
            Some(d) => absolute(d)?,
            None => signpost::discover::find_disk(&sysroot).context(error::DiskSnafu {
                action: "find the node's disk",
            })?,
        };
        Ok(Node { sysroot, disk })
    }

    fn signpost(&self) -> Result<SignpostDisk<File>> {
        let file = signpost::discover::open_disk(&self.disk, true).context(error::DiskSnafu {
            action: "open the disk",
        })?;
        SignpostDisk::open(file, self.disk.display().to_string()).context(error::DiskSnafu {
            action: "read the partition table",
        })
    }

    /// Boots once and returns what happened. An error means the node could not boot at all
    /// (no bootable set, an unreadable disk); a failed boot is an outcome that asks for a reboot.
    pub fn boot(&self) -> Result<BootRecord> {
        self.reset_volatile()?;

        // Firmware and bootloader: repair a torn table copy, choose, spend a try, record.
        let mut disk = self.signpost()?;
        disk.repair().context(error::DiskSnafu {
            action: "repair the partition table",
        })?;
        let set = disk.boot_select().context(error::DiskSnafu {
            action: "choose a set to boot",
        })?;
        let parts = disk.partitions(set).clone();
        signpost::discover::write_booted_marker(&self.sysroot, parts.boot.unique_guid).context(
            error::DiskSnafu {
                action: "record the booted set",
            },
        )?;
        drop(disk);
        let (rec, marked_before) = self.begin_record(set)?;

        // The kernel: dm-verity refuses a ROOT that does not match its HASH.
        let info = match self.verified_root(&parts) {
            Ok(info) => info,
            Err(reason) => {
                return self.finish(rec, Outcome::VerityFailed, format!("set {set}: {reason}"));
            }
        };
        self.expose(&info)?;
        let version = info.os_release.version_id().clone();
        self.services(
            rec,
            set,
            marked_before,
            version,
            info.health_checks.as_deref(),
        )
    }

    /// Runs the boot services (migrator, health gate, mark-successful-boot) on a node whose
    /// firmware and kernel have already booted it, as on a real machine: the booted set is the
    /// one signpost finds (`run/booted-set`, written by the initramfs's `signpost boot-select`),
    /// and the image's `etc/os-release` and `etc/twinset/health-checks.toml` are read where they
    /// are under the sysroot (the verified root filesystem). Returns the boot's record, also
    /// written to `var/lib/twinset/last-boot.json`.
    pub fn start_services(&self) -> Result<BootRecord> {
        let disk = self.signpost()?;
        let (set, _) = signpost::discover::find_active_set(&disk, &self.sysroot, None).context(
            error::DiskSnafu {
                action: "find the booted set",
            },
        )?;
        drop(disk);
        let (rec, marked_before) = self.begin_record(set)?;
        let os_release = self.sysroot.join(EXPOSED[0]);
        let text = std::fs::read_to_string(&os_release).context(error::IoSnafu {
            action: "read",
            path: &os_release,
        })?;
        let parsed: image_builder::OsRelease = text
            .parse()
            .context(error::OsReleaseSnafu { path: &os_release })?;
        let checks_path = self.sysroot.join(EXPOSED[2]);
        let checks = match std::fs::read_to_string(&checks_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(error::Error::Io {
                    action: "read".to_string(),
                    path: checks_path,
                    source,
                });
            }
        };
        self.services(
            rec,
            set,
            marked_before,
            parsed.version_id().clone(),
            checks.as_deref(),
        )
    }

    /// The record of a boot of `set` that the bootloader has just chosen (its try spent), and
    /// whether the set was already marked successful. Records a fallback when the other set
    /// outranks this one but can no longer boot (its try was spent and never confirmed), once:
    /// unless the last record is of a boot of this same set that found the same failed try (a
    /// try whose boot never finished, cut by a power loss or a panic, counts too).
    fn begin_record(&self, set: SetId) -> Result<(BootRecord, bool)> {
        let previous = record::last_boot(&self.sysroot).ok().flatten();
        let disk = self.signpost()?;
        let marked_before = disk.flags(set).successful;
        let other = disk.flags(set.other());
        let other_failed =
            other.priority.get() > disk.flags(set).priority.get() && !other.is_bootable();
        let other_parts = disk.partitions(set.other()).clone();
        drop(disk);
        let mut rec = BootRecord {
            boot: previous.as_ref().map_or(0, |p| p.boot) + 1,
            set: set.to_string(),
            version: None,
            outcome: Outcome::Healthy,
            reason: String::new(),
            migration: None,
            checks: Vec::new(),
            fell_back_from: None,
            other_set_failed: None,
            time: jiff::Timestamp::now().to_string(),
        };
        if other_failed {
            let version = self.unverified_version(&other_parts);
            let shown = version.clone().unwrap_or_else(|| "unknown".to_string());
            let recorded = previous.as_ref().is_some_and(|p| {
                p.set == rec.set
                    && p.other_set_failed
                        .as_ref()
                        .or(p.fell_back_from.as_ref())
                        .is_some_and(|v| *v == shown)
            });
            if !recorded {
                if let Some(version) = &version {
                    record::record_failed_version(&self.sysroot, version)?;
                }
                rec.fell_back_from = Some(shown.clone());
            }
            rec.other_set_failed = Some(shown);
        }
        Ok((rec, marked_before))
    }

    /// systemd's part of a boot of `version`: migrator, then the health gate, then
    /// mark-successful-boot and the datastore confirmed.
    fn services(
        &self,
        mut rec: BootRecord,
        set: SetId,
        marked_before: bool,
        version: semver::Version,
        health_checks: Option<&str>,
    ) -> Result<BootRecord> {
        rec.version = Some(version.to_string());
        let options = migrator::MigrateOptions::under_sysroot(&self.sysroot, version.clone());
        match migrator::migrate(&options) {
            Ok(outcome) => rec.migration = Some(outcome.to_string()),
            Err(e) => {
                if !marked_before {
                    record::record_failed_version(&self.sysroot, &version.to_string())?;
                }
                return self.finish(rec, Outcome::MigrationFailed, error_chain(&e));
            }
        }
        let checks = match health_checks {
            Some(text) => health::parse(text, &format!("{version}: {}", EXPOSED[2])),
            None => Ok(Vec::new()),
        };
        let checks = match checks {
            Ok(checks) => checks,
            Err(e) if marked_before => {
                rec.reason = error_chain(&e);
                return self.finish(rec, Outcome::Degraded, String::new());
            }
            Err(e) => {
                record::record_failed_version(&self.sysroot, &version.to_string())?;
                return self.finish(rec, Outcome::HealthFailed, error_chain(&e));
            }
        };
        rec.checks = health::run_all(&checks, &self.sysroot);
        let failed: Vec<String> = rec
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("health check '{}' {}", c.name, c.detail))
            .collect();
        if !failed.is_empty() {
            if marked_before {
                // A set already confirmed is never given up for a failing check: no reboot loop.
                return self.finish(rec, Outcome::Degraded, failed.join("; "));
            }
            record::record_failed_version(&self.sysroot, &version.to_string())?;
            return self.finish(rec, Outcome::HealthFailed, failed.join("; "));
        }
        // Like the systemd unit on a real node, mark on every healthy boot: it also records that
        // a boot has ever succeeded on this disk (PRIVATE bit 57), which a factory-fresh set A
        // does not have yet.
        let mut disk = self.signpost()?.with_active(set);
        disk.mark_successful_boot().context(error::DiskSnafu {
            action: "mark the boot successful",
        })?;
        drop(disk);
        migrator::confirm(&options.datastore).context(error::ConfirmSnafu)?;
        let outcome = if marked_before {
            Outcome::Healthy
        } else {
            Outcome::Marked
        };
        self.finish(rec, outcome, String::new())
    }

    /// Boots until a boot does not ask for a reboot, at most `max_boots` times.
    pub fn boot_until_settled(&self, max_boots: u32) -> Result<Vec<BootRecord>> {
        let mut records = Vec::new();
        for _ in 0..max_boots {
            let rec = self.boot()?;
            let again = rec.outcome.needs_reboot();
            records.push(rec);
            if !again {
                return Ok(records);
            }
        }
        error::UnsettledSnafu { boots: max_boots }.fail()
    }

    fn finish(&self, mut rec: BootRecord, outcome: Outcome, reason: String) -> Result<BootRecord> {
        rec.outcome = outcome;
        if !reason.is_empty() {
            rec.reason = reason;
        }
        rec.time = jiff::Timestamp::now().to_string();
        record::write_last_boot(&self.sysroot, &rec)?;
        Ok(rec)
    }

    /// `run/` is volatile: a boot starts with it empty, as tmpfs does.
    fn reset_volatile(&self) -> Result<()> {
        let run = self.sysroot.join("run");
        if run.exists() {
            std::fs::remove_dir_all(&run).context(error::IoSnafu {
                action: "clear",
                path: &run,
            })?;
        }
        std::fs::create_dir_all(&run).context(error::IoSnafu {
            action: "create",
            path: &run,
        })
    }

    /// Reads BOOT's verity parameters and checks all of ROOT against HASH with them.
    fn verified_root(&self, parts: &SetPartitions) -> std::result::Result<RootInfo, String> {
        let open = || File::open(&self.disk).map_err(|e| format!("cannot open the disk: {e}"));
        let boot = ImageRegion::new(
            open()?,
            parts.boot.byte_range().start,
            parts.boot.size_bytes(),
        );
        let params = image_builder::read_boot_params(boot).map_err(|e| error_chain(&e))?;
        let data = verity::Region::new(
            open()?,
            parts.root.byte_range().start,
            parts.root.size_bytes(),
        )
        .map_err(|e| format!("cannot read ROOT: {e}"))?;
        let hash = verity::Region::new(
            open()?,
            parts.hash.byte_range().start,
            parts.hash.size_bytes(),
        )
        .map_err(|e| format!("cannot read HASH: {e}"))?;
        verity::verify(&params, data, hash)
            .map_err(|e| format!("dm-verity refuses ROOT: {}", error_chain(&e)))?;
        let root = ImageRegion::new(
            open()?,
            parts.root.byte_range().start,
            parts.root.size_bytes(),
        );
        image_builder::read_root_info(root).map_err(|e| error_chain(&e))
    }

    /// The version in a set's ROOT without verifying it: only for the record of a failed try.
    fn unverified_version(&self, parts: &SetPartitions) -> Option<String> {
        let file = File::open(&self.disk).ok()?;
        let root = ImageRegion::new(file, parts.root.byte_range().start, parts.root.size_bytes());
        let info = image_builder::read_root_info(root).ok()?;
        Some(info.os_release.version_id().to_string())
    }

    fn expose(&self, info: &RootInfo) -> Result<()> {
        let files: [Option<&[u8]>; 3] = [
            Some(info.os_release.text().as_bytes()),
            Some(&info.root_json),
            info.health_checks.as_deref().map(str::as_bytes),
        ];
        for (path, bytes) in EXPOSED.iter().zip(files) {
            let dst = self.sysroot.join(path);
            match bytes {
                Some(bytes) => record::write_atomic(&dst, bytes)?,
                None => {
                    if dst.exists() {
                        std::fs::remove_file(&dst).context(error::IoSnafu {
                            action: "remove",
                            path: &dst,
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The device-mapper table that opens `set`'s ROOT under dm-verity with the parameters its
    /// BOOT carries, for `dmsetup create NAME --readonly --table ...` in an initramfs. `set`
    /// defaults to the booted one (`run/booted-set`, written by `signpost boot-select`). The data
    /// and hash devices are the disk's partition devices (`/dev/vda3`, `/dev/nvme0n1p3`), and the
    /// table ends with `1 restart_on_corruption`: a block that does not match its hash restarts
    /// the machine, so the set never reaches a successful boot and the bootloader falls back.
    pub fn verity_table(&self, set: Option<SetId>) -> Result<String> {
        let disk = self.signpost()?;
        let set = match set {
            Some(set) => set,
            None => {
                signpost::discover::find_active_set(&disk, &self.sysroot, None)
                    .context(error::DiskSnafu {
                        action: "find the booted set",
                    })?
                    .0
            }
        };
        let parts = disk.partitions(set).clone();
        drop(disk);
        let file = File::open(&self.disk).context(error::IoSnafu {
            action: "open",
            path: &self.disk,
        })?;
        let boot = ImageRegion::new(file, parts.boot.byte_range().start, parts.boot.size_bytes());
        let params = image_builder::read_boot_params(boot).context(error::BootParamsSnafu {
            set: set.to_string(),
        })?;
        let data = partition_device(&self.disk, parts.root.number);
        let hash = partition_device(&self.disk, parts.hash.number);
        Ok(format!(
            "{} 1 restart_on_corruption",
            params.dm_table(&data, &hash)
        ))
    }

    /// Both sets' flags, for status output.
    pub fn sets(&self) -> Result<Vec<(SetId, signpost::BootFlags)>> {
        let disk = self.signpost()?;
        Ok(SetId::ALL.iter().map(|s| (*s, disk.flags(*s))).collect())
    }
}

/// The device of partition `number` of the disk at `disk`, named as the kernel names it: a digit
/// at the end of the disk's name takes a `p` before the number (`/dev/nvme0n1p3`, `/dev/vda3`).
pub fn partition_device(disk: &Path, number: u32) -> String {
    let name = disk.display().to_string();
    if name.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{name}p{number}")
    } else {
        format!("{name}{number}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_devices_are_named_as_the_kernel_names_them() {
        assert_eq!(partition_device(Path::new("/dev/vda"), 3), "/dev/vda3");
        assert_eq!(
            partition_device(Path::new("/dev/nvme0n1"), 3),
            "/dev/nvme0n1p3"
        );
        assert_eq!(
            partition_device(Path::new("/dev/loop7"), 12),
            "/dev/loop7p12"
        );
    }
}
