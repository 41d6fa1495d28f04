//! A machine: one GPT disk booted again and again under qemu, with an offline repository on a
//! second disk, inspected from the host between boots (serial markers, DATA read with debugfs,
//! `sgdisk -i` attributes).

use crate::error::{self, Result};
use crate::guest::{MARKER, read_file, run, tail};
use crate::lab::Lab;
use signpost::{PartitionInfo, SetId, SignpostDisk};
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testsys::{BuiltRelease, TestNode};

/// Seconds one boot may take before qemu is killed (`TWINSET_VM_BOOT_TIMEOUT` overrides).
pub const BOOT_TIMEOUT_SECS: u64 = 300;

/// What the guest does after its boot services pass (`twinset.step=` on the kernel command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing: power off.
    None,
    /// `updog update-image` from the offline repository, then `updog update-apply`.
    Update,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::None => "none",
            Step::Update => "update",
        }
    }
}

/// One GPT disk that boots under qemu.
#[derive(Debug)]
pub struct Machine {
    /// Its working directory (serial logs `boot-N.log`).
    pub dir: PathBuf,
    /// The disk image.
    pub disk: PathBuf,
    /// The disk as a test node (partition table access).
    pub node: TestNode,
    kernel: PathBuf,
    initramfs: PathBuf,
    repo_disk: Option<PathBuf>,
    boots: u32,
}

/// One power-on, as the host saw it.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The serial log.
    pub log: PathBuf,
    /// Its text.
    pub serial: String,
    /// Whether the host cut the power.
    pub cut: bool,
}

impl Boot {
    /// The guest's marker lines (after the marker prefix), in order.
    pub fn markers(&self) -> Vec<&str> {
        self.serial
            .lines()
            .filter_map(|l| l.split_once(MARKER).map(|(_, rest)| rest.trim()))
            .collect()
    }

    /// Whether some marker line contains `text`.
    pub fn has(&self, text: &str) -> bool {
        self.markers().iter().any(|m| m.contains(text))
    }
}

impl Machine {
    /// A machine on `node`'s disk that boots `kernel` with `initramfs`, no repository disk yet.
    pub(crate) fn new(dir: PathBuf, node: TestNode, kernel: &Path, initramfs: &Path) -> Machine {
        Machine {
            dir,
            disk: node.disk.clone(),
            node,
            kernel: kernel.to_path_buf(),
            initramfs: initramfs.to_path_buf(),
            repo_disk: None,
            boots: 0,
        }
    }

    /// Writes everything `lab` has published so far to an ext4 image attached as the second
    /// disk (`/dev/vdb`, mounted read-only on `/media/repo`): the offline repository.
    pub fn write_repo_disk(&mut self, lab: &Lab) -> Result<()> {
        let repo_disk = self.dir.join("repo.ext4");
        lab.write_repo_disk(&repo_disk)?;
        self.repo_disk = Some(repo_disk);
        Ok(())
    }

    /// Powers on once and waits for the machine to end (power-off, restart or panic: with
    /// `-no-reboot` each ends qemu).
    pub fn boot(&mut self, step: Step) -> Result<Boot> {
        self.power_on(step, None)
    }

    /// Powers on and cuts the power (kills qemu) as soon as the serial console shows `text`.
    pub fn boot_and_cut_at(&mut self, step: Step, text: &str) -> Result<Boot> {
        self.power_on(step, Some(text))
    }

    fn power_on(&mut self, step: Step, cut_at: Option<&str>) -> Result<Boot> {
        self.boots += 1;
        let log = self.dir.join(format!("boot-{}.log", self.boots));
        File::create(&log).context(error::IoSnafu {
            action: "create",
            path: &log,
        })?;
        let secs = std::env::var("TWINSET_VM_BOOT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(BOOT_TIMEOUT_SECS);
        let mut command = Command::new("timeout");
        command
            .args(["--kill-after=10", &secs.to_string(), "qemu-system-x86_64"])
            .args(["-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1"])
            .args([
                "-no-reboot",
                "-nographic",
                "-monitor",
                "none",
                "-net",
                "none",
            ])
            .arg("-serial")
            .arg(format!("file:{}", log.display()))
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initramfs)
            .arg("-append")
            .arg(format!(
                "console=ttyS0 panic=-1 twinset.step={}",
                step.name()
            ))
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", self.disk.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(repo) = &self.repo_disk {
            command.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,readonly=on",
                repo.display()
            ));
        }
        let mut child = command.spawn().context(error::SpawnSnafu {
            tool: "qemu-system-x86_64",
        })?;
        let mut cut = false;
        if let Some(text) = cut_at {
            cut = wait_for(&mut child, &log, text, Duration::from_secs(secs))?;
            if cut {
                // timeout passes SIGTERM on to qemu, which stops at once: the guest gets no
                // chance to flush anything, as when the power goes.
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        let output = child.wait_with_output().context(error::SpawnSnafu {
            tool: "qemu-system-x86_64",
        })?;
        let serial = read_serial(&log)?;
        if output.status.code() == Some(124) || output.status.code() == Some(137) {
            return error::HungSnafu {
                secs,
                log,
                tail: tail(&serial),
            }
            .fail();
        }
        Ok(Boot { log, serial, cut })
    }

    /// Writes `release` into the set other than `active` and applies it, from the host, the way
    /// updog does on the node: the set cleared, the three images written, the set marked valid
    /// (one try) and given priority 2 (signpost's `clear-inactive`, `mark-inactive-valid`,
    /// `upgrade-to-inactive`).
    pub fn stage(&self, active: SetId, release: &BuiltRelease) -> Result<()> {
        let disk_err = |action: &str| error::DiskSnafu {
            action: action.to_string(),
        };
        let open = || self.partition_table().map(|d| d.with_active(active));
        open()?
            .clear_inactive()
            .with_context(|_| disk_err("clear the inactive set"))?;
        self.node
            .write_release(active.other(), release)
            .context(error::BuildSnafu {
                action: format!("write {} into set {}", release.version, active.other()),
            })?;
        let mut disk = open()?;
        disk.mark_inactive_valid()
            .with_context(|_| disk_err("mark the inactive set valid"))?;
        disk.upgrade_to_inactive()
            .with_context(|_| disk_err("upgrade to the inactive set"))
    }

    /// Whether `set`'s BOOT, ROOT and HASH partitions begin with `release`'s images, byte for byte.
    pub fn holds(&self, set: SetId, release: &BuiltRelease) -> Result<bool> {
        let parts = self.partition_table()?.partitions(set).clone();
        for (image, part) in [
            (&release.images.boot, &parts.boot),
            (&release.images.root, &parts.root),
            (&release.images.hash, &parts.hash),
        ] {
            let want = read_file(&image.path)?;
            let mut have = vec![0u8; want.len()];
            let mut disk = File::open(&self.disk).context(error::IoSnafu {
                action: "open",
                path: &self.disk,
            })?;
            disk.seek(SeekFrom::Start(part.byte_range().start))
                .and_then(|_| disk.read_exact(&mut have))
                .context(error::IoSnafu {
                    action: "read a partition of",
                    path: &self.disk,
                })?;
            if have != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A set's BOOT attribute bits as `sgdisk -i` prints them.
    pub fn flags(&self, set: SetId) -> Result<SetFlags> {
        let number = self.partition_table()?.partitions(set).boot.number;
        let bits = self.attributes(number)?;
        Ok(SetFlags {
            priority: ((bits >> 48) & 0xf) as u8,
            tries_left: ((bits >> 52) & 0xf) as u8,
            successful: bits & (1 << 56) != 0,
        })
    }

    /// Whether PRIVATE's bit 57 says a boot has ever succeeded on this disk (`sgdisk -i`).
    pub fn boot_ever_succeeded(&self) -> Result<bool> {
        let number = self.partition_table()?.private_partition().number;
        Ok(self.attributes(number)? & (1 << 57) != 0)
    }

    fn attributes(&self, number: u32) -> Result<u64> {
        let out = run(
            Command::new("sgdisk")
                .arg("-i")
                .arg(number.to_string())
                .arg(&self.disk),
            "read partition attributes",
        )?;
        let hex = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Attribute flags:"))
            .map(str::trim)
            .unwrap_or_default();
        u64::from_str_radix(hex, 16).map_err(|_| error::Error::Io {
            action: format!("find the attribute flags of partition {number} in"),
            path: self.disk.clone(),
            source: std::io::Error::other(format!("sgdisk printed: {}", tail(&out))),
        })
    }

    /// DATA as the guest left it (its journal replayed on a copy, as a mount would), dumped
    /// with debugfs.
    pub fn data(&self) -> Result<Data> {
        let part = self.data_partition()?;
        let dir = tempfile::tempdir_in(&self.dir).context(error::IoSnafu {
            action: "create a directory in",
            path: &self.dir,
        })?;
        let image = dir.path().join("data.ext4");
        copy_range(
            &self.disk,
            part.byte_range().start,
            part.size_bytes(),
            &image,
        )?;
        // After a power cut, committed writes may still sit in DATA's journal: replay it on the
        // copy, as the kernel does when it mounts DATA (exit 1: the journal was replayed).
        let status = Command::new("e2fsck")
            .args(["-E", "journal_only", "-y"])
            .arg(&image)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context(error::SpawnSnafu { tool: "e2fsck" })?;
        if !matches!(status.code(), Some(0 | 1)) {
            return error::ToolSnafu {
                action: "replay DATA's journal",
                command: format!("e2fsck -E journal_only -y {}", image.display()),
                status,
                stderr: String::new(),
            }
            .fail();
        }
        run(
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("rdump /lib {}", dir.path().display()))
                .arg(&image),
            "dump DATA with debugfs",
        )?;
        Ok(Data { dir })
    }

    /// Flips one byte in the first block of `file` in `set`'s ROOT, which holds `release` (the
    /// block found with `debugfs -R 'bmap FILE 0'` on the release's ROOT image).
    pub fn corrupt(&self, set: SetId, release: &BuiltRelease, file: &str) -> Result<()> {
        let out = run(
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("bmap {file} 0"))
                .arg(&release.images.root.path),
            "find a file's block in ROOT",
        )?;
        let block: u64 = out.trim().parse().map_err(|_| error::Error::Io {
            action: format!("find the first block of '{file}' in"),
            path: release.images.root.path.clone(),
            source: std::io::Error::other(format!("debugfs printed: {}", out.trim())),
        })?;
        let root = self.partition_table()?.partitions(set).root.clone();
        let offset = root.byte_range().start + block * 4096 + 20;
        let mut disk = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.disk)
            .context(error::IoSnafu {
                action: "open",
                path: &self.disk,
            })?;
        let mut byte = [0u8];
        disk.seek(SeekFrom::Start(offset))
            .and_then(|_| disk.read_exact(&mut byte))
            .and_then(|_| disk.seek(SeekFrom::Start(offset)))
            .and_then(|_| disk.write_all(&[byte[0] ^ 0xff]))
            .and_then(|_| disk.sync_all())
            .context(error::IoSnafu {
                action: "flip a byte of ROOT in",
                path: &self.disk,
            })
    }

    /// The disk's partition table, read with signpost.
    fn partition_table(&self) -> Result<SignpostDisk<File>> {
        self.node.signpost().context(error::BuildSnafu {
            action: "read the partition table",
        })
    }

    /// The DATA partition.
    pub(crate) fn data_partition(&self) -> Result<PartitionInfo> {
        self.partition_table()?
            .data_partition()
            .cloned()
            .ok_or_else(|| error::Error::Io {
                action: "find DATA on".to_string(),
                path: self.disk.clone(),
                source: std::io::Error::other("the layout has no DATA partition"),
            })
    }
}

/// A set's boot bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetFlags {
    /// Priority, 0–15.
    pub priority: u8,
    /// Tries left, 0–15.
    pub tries_left: u8,
    /// Marked successful.
    pub successful: bool,
}

/// DATA's `/lib` (the guest's `/var/lib`) dumped on the host.
#[derive(Debug)]
pub struct Data {
    dir: tempfile::TempDir,
}

impl Data {
    /// The dumped `/var/lib`.
    pub fn var_lib(&self) -> PathBuf {
        self.dir.path().join("lib")
    }

    /// `var/lib/twinset/last-boot.json`.
    pub fn last_boot(&self) -> Result<node_sim::BootRecord> {
        let path = self.var_lib().join("twinset/last-boot.json");
        serde_json::from_slice(&read_file(&path)?).context(error::ParseSnafu { path })
    }

    /// The datastore's live value of `key`, as JSON text.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        let path = self.var_lib().join("datastore");
        let err = || error::DatastoreSnafu { path: &path };
        let store = migrator::Datastore::open_current(&path).with_context(|_| err())?;
        let key = migrator::Key::new(key).with_context(|_| err())?;
        Ok(store
            .get(&key)
            .with_context(|_| err())?
            .map(|v| v.to_string()))
    }

    /// The datastore's version and whether it is confirmed.
    pub fn datastore(&self) -> Result<(String, bool)> {
        let path = self.var_lib().join("datastore");
        let status = migrator::status(&path).context(error::DatastoreSnafu { path: &path })?;
        Ok(status.map_or((String::new(), false), |s| {
            (s.version.to_string(), s.confirmed)
        }))
    }
}

/// Polls the serial log until it shows `text` (true) or qemu ends (false).
fn wait_for(child: &mut Child, log: &Path, text: &str, limit: Duration) -> Result<bool> {
    let started = Instant::now();
    loop {
        if read_serial(log)?.contains(text) {
            return Ok(true);
        }
        if child
            .try_wait()
            .context(error::SpawnSnafu {
                tool: "qemu-system-x86_64",
            })?
            .is_some()
            || started.elapsed() > limit
        {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The serial log's text so far.
fn read_serial(log: &Path) -> Result<String> {
    Ok(String::from_utf8_lossy(&read_file(log)?).into_owned())
}

fn copy_range(disk: &Path, offset: u64, len: u64, to: &Path) -> Result<()> {
    let mut input = File::open(disk).context(error::IoSnafu {
        action: "open",
        path: disk,
    })?;
    let mut out = File::create(to).context(error::IoSnafu {
        action: "create",
        path: to,
    })?;
    input
        .seek(SeekFrom::Start(offset))
        .and_then(|_| std::io::copy(&mut (&mut input).take(len), &mut out))
        .context(error::IoSnafu {
            action: "copy DATA from",
            path: disk,
        })?;
    Ok(())
}
