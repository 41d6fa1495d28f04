//! What runs inside the machine: the workspace's own binaries (stripped, with the shared
//! libraries `ldd` names), busybox, the initramfs that plays firmware and bootloader, and the
//! ROOT tree whose init plays systemd.

use crate::error::{self, Result};
use crate::kernel::{Kernel, MODULES};
use snafu::ResultExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The prefix of every line the guest's scripts print on the serial console.
pub const MARKER: &str = "twinset-vm:";

/// Where the guest mounts the offline repository disk (`/dev/vdb`, ext4).
pub const REPO_MOUNT: &str = "/media/repo";

/// The initramfs's `/init`: the firmware and the bootloader. It makes signpost's gptprio choice
/// on the real disk (a try spent and written before booting), reads the chosen set's verity
/// parameters from its BOOT, opens ROOT under dm-verity (restart on corruption), mounts it
/// read-only and switches into it.
pub const INITRAMFS_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
say() { echo "twinset-vm: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
halt() { say "firmware: $*"; poweroff -f; }
for m in $(cat /etc/modules); do insmod "/lib/modules/$m" || halt "cannot load $m"; done
i=0
while [ ! -b /dev/vda ]; do
    i=$((i + 1)); [ $i -gt 100 ] && halt "no /dev/vda"; sleep 0.1
done
chosen=$(signpost --disk /dev/vda boot-select --json) || halt "no bootable set"
say "firmware: boot-select $chosen"
table=$(node-sim --sysroot / --disk /dev/vda verity-table) || halt "no verity parameters"
say "firmware: verity $table"
DM_DISABLE_UDEV=1 dmsetup create root --readonly --table "$table" || halt "dmsetup failed"
mount -t ext4 -o ro /dev/mapper/root /newroot || halt "cannot mount the verified root"
say "firmware: switching to the verified root"
for d in dev proc sys run; do mount --move "/$d" "/newroot/$d"; done
exec switch_root /newroot /sbin/init
"#;

/// ROOT's `/sbin/init`: systemd's part. It mounts DATA on `/var`, runs `node-sim services`
/// (migrator, health gate, mark-successful-boot), then the step named by `twinset.step=` on the
/// kernel command line, and powers off.
pub const ROOT_INIT: &str = r#"#!/bin/sh
export PATH=/bin:/usr/bin
mount -t tmpfs tmpfs /tmp
say() { echo "twinset-vm: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
. /etc/os-release
say "root: version $VERSION_ID running"
data=$(findfs LABEL=DATA) && mount -t ext4 "$data" /var || say "root: cannot mount DATA"
off() { sync; umount /var; say "power off"; poweroff -f; }
node-sim --sysroot / --disk /dev/vda services --json > /run/boot.json
rc=$?
tr -d '\n' < /run/boot.json; echo
say "services: exit $rc"
[ $rc -eq 0 ] || off
step=$(sed -n 's/.*twinset\.step=\([a-z-]*\).*/\1/p' /proc/cmdline)
case "$step" in
update)
    mount -t ext4 -o ro /dev/vdb /media/repo || say "step: no repository disk"
    say "step update: start"
    updog --disk /dev/vda --progress json update-image
    say "step update-image: exit $?"
    updog --disk /dev/vda update-apply
    say "step update-apply: exit $?"
    ;;
esac
off
"#;

/// The stripped binaries and the libraries they need, ready to copy into a tree.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// (path inside the guest, file on the host).
    pub files: Vec<(String, PathBuf)>,
}

impl Binaries {
    /// Copies `binaries` (host paths, placed in the guest's `/usr/bin`) into `work`, stripped,
    /// and adds every shared library `ldd` names for them at the path it names.
    pub fn collect(work: &Path, binaries: &[PathBuf]) -> Result<Binaries> {
        std::fs::create_dir_all(work).context(error::IoSnafu {
            action: "create",
            path: work,
        })?;
        let mut files = Vec::new();
        for bin in binaries {
            let name = bin
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let copy = work.join(&name);
            std::fs::copy(bin, &copy).context(error::IoSnafu {
                action: "copy",
                path: bin,
            })?;
            run(Command::new("strip").arg(&copy), "strip a guest binary")?;
            files.push((format!("usr/bin/{name}"), copy));
        }
        let mut libs = Vec::new();
        for (_, host) in &files {
            for lib in ldd(host)? {
                if !libs.contains(&lib) {
                    libs.push(lib);
                }
            }
        }
        for lib in libs {
            let guest = lib.trim_start_matches('/').to_string();
            files.push((guest, PathBuf::from(lib)));
        }
        Ok(Binaries { files })
    }

    /// Copies the binaries named in `names` and every library into `tree` at their guest paths.
    pub fn install(&self, tree: &Path, names: &[&str]) -> Result<()> {
        for (guest, host) in &self.files {
            let wanted = match guest.strip_prefix("usr/bin/") {
                Some(name) => names.contains(&name),
                None => true,
            };
            if wanted {
                copy_file(host, &tree.join(guest), 0o755)?;
            }
        }
        Ok(())
    }
}

/// The libraries a dynamic executable loads, as `ldd` names them (absolute paths).
pub fn ldd(binary: &Path) -> Result<Vec<String>> {
    let out = run(Command::new("ldd").arg(binary), "list a binary's libraries")?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| path.to_string())
        })
        .collect())
}

/// Installs busybox at `bin/busybox` in `tree` with a symlink for each of its applets.
pub fn install_busybox(busybox: &Path, tree: &Path) -> Result<()> {
    copy_file(busybox, &tree.join("bin/busybox"), 0o755)?;
    let list = run(
        Command::new(busybox).arg("--list"),
        "list busybox's applets",
    )?;
    for applet in list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let link = tree.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link).context(error::IoSnafu {
                action: "link",
                path: &link,
            })?;
        }
    }
    Ok(())
}

/// Builds the initramfs (cpio newc) at `out`: busybox, the kernel modules in load order, the
/// guest binaries (signpost and node-sim are what it calls), dmsetup with its libraries, and
/// [`INITRAMFS_INIT`].
pub fn build_initramfs(
    kernel: &Kernel,
    busybox: &Path,
    dmsetup: &Path,
    binaries: &Binaries,
    work: &Path,
    out: &Path,
) -> Result<()> {
    let tree = work.join("initramfs");
    for dir in ["proc", "sys", "dev", "run", "newroot", "etc", "lib/modules"] {
        mkdir(&tree.join(dir))?;
    }
    install_busybox(busybox, &tree)?;
    binaries.install(&tree, &["signpost", "node-sim"])?;
    copy_file(dmsetup, &tree.join("usr/bin/dmsetup"), 0o755)?;
    for lib in ldd(dmsetup)? {
        copy_file(
            Path::new(&lib),
            &tree.join(lib.trim_start_matches('/')),
            0o755,
        )?;
    }
    let mut list = String::new();
    for module in kernel.module_closure(&MODULES)? {
        let name = module
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        copy_file(&module, &tree.join("lib/modules").join(&name), 0o644)?;
        list.push_str(&name);
        list.push('\n');
    }
    write_file(&tree.join("etc/modules"), list.as_bytes(), 0o644)?;
    write_file(&tree.join("init"), INITRAMFS_INIT.as_bytes(), 0o755)?;
    cpio(&tree, out)
}

/// Packs `tree` into a cpio newc archive at `out` with the `cpio` tool.
fn cpio(tree: &Path, out: &Path) -> Result<()> {
    let mut names = Vec::new();
    list_tree(tree, tree, &mut names)?;
    let file = std::fs::File::create(out).context(error::IoSnafu {
        action: "create",
        path: out,
    })?;
    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet", "--owner=0:0"])
        .current_dir(tree)
        .stdin(Stdio::piped())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .context(error::SpawnSnafu { tool: "cpio" })?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(names.join("\n").as_bytes())
            .context(error::SpawnSnafu { tool: "cpio" })?;
    }
    let output = child
        .wait_with_output()
        .context(error::SpawnSnafu { tool: "cpio" })?;
    if !output.status.success() {
        return error::ToolSnafu {
            action: "pack the initramfs",
            command: "cpio -o -H newc",
            status: output.status,
            stderr: tail(&String::from_utf8_lossy(&output.stderr)),
        }
        .fail();
    }
    Ok(())
}

fn list_tree(root: &Path, dir: &Path, names: &mut Vec<String>) -> Result<()> {
    let mut entries = list_dir(dir)?;
    entries.sort();
    for path in entries {
        if let Ok(rel) = path.strip_prefix(root) {
            names.push(rel.display().to_string());
        }
        if path.is_dir() && !path.is_symlink() {
            list_tree(root, &path, names)?;
        }
    }
    Ok(())
}

/// Runs a command, returning its stdout; a failure names `action` and the end of stderr.
pub(crate) fn run(command: &mut Command, action: &str) -> Result<String> {
    let tool = command.get_program().to_string_lossy().to_string();
    let output = command.output().context(error::SpawnSnafu { tool })?;
    if !output.status.success() {
        return error::ToolSnafu {
            action,
            command: format!("{command:?}"),
            status: output.status,
            stderr: tail(&String::from_utf8_lossy(&output.stderr)),
        }
        .fail();
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The last few lines of a text, on one line.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

/// The paths of `dir`'s entries, in the order the directory lists them.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let failed = || error::IoSnafu {
        action: "list",
        path: dir,
    };
    std::fs::read_dir(dir)
        .with_context(|_| failed())?
        .map(|entry| entry.map(|e| e.path()).with_context(|_| failed()))
        .collect()
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).context(error::IoSnafu {
        action: "read",
        path,
    })
}

pub(crate) fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).context(error::IoSnafu {
        action: "create",
        path,
    })
}

pub(crate) fn copy_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        mkdir(parent)?;
    }
    std::fs::copy(from, to).context(error::IoSnafu {
        action: "copy",
        path: from,
    })?;
    set_mode(to, mode)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        mkdir(parent)?;
    }
    std::fs::write(path, bytes).context(error::IoSnafu {
        action: "write",
        path,
    })?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).context(error::IoSnafu {
        action: "set the mode of",
        path,
    })
}
