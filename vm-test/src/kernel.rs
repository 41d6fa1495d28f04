//! The guest kernel: Debian's `linux-image-*-amd64` unpacked (not installed) into a directory by
//! `.ci/fetch-vm-kernel`, and the modules the initramfs loads, in dependency order.

use crate::error::{self, Result};
use crate::guest::{list_dir, read_file};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variable naming the unpacked kernel package.
pub const KERNEL_DIR_ENV: &str = "TWINSET_VM_KERNEL_DIR";

/// The modules the guest needs, by name: the virtio disk, ext4 (which cannot mount without
/// `crc32c_generic` loaded explicitly), and device-mapper with dm-verity. Their dependencies are
/// added from each module's `depends=`.
pub const MODULES: [&str; 5] = [
    "virtio_blk",
    "virtio_pci",
    "crc32c_generic",
    "ext4",
    "dm-verity",
];

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The directory the package was unpacked into.
    pub dir: PathBuf,
    /// What qemu starts with `-kernel`: `boot/vmlinux-<release>` (uncompressed, started through
    /// its PVH entry, which spares each boot decompressing the kernel under emulation) when
    /// `.ci/fetch-vm-kernel` wrote it, else `boot/vmlinuz-<release>`.
    pub image: PathBuf,
    /// `lib/modules/<release>`.
    pub modules: PathBuf,
}

impl Kernel {
    /// The default directory: `$TWINSET_VM_KERNEL_DIR`, else `~/.cache/twinset/vm-kernel`.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os(KERNEL_DIR_ENV) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        home.join(".cache/twinset/vm-kernel")
    }

    /// The kernel unpacked in `dir`.
    pub fn open(dir: &Path) -> Result<Kernel> {
        let fail = |reason: String| error::KernelSnafu { dir, reason }.fail();
        let boot = dir.join("boot");
        let vmlinuz = std::fs::read_dir(&boot).ok().and_then(|entries| {
            entries.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
        });
        let Some(vmlinuz) = vmlinuz else {
            return fail(format!(
                "no boot/vmlinuz-* (run .ci/fetch-vm-kernel, or set {KERNEL_DIR_ENV})"
            ));
        };
        let release = vmlinuz
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_start_matches("vmlinuz-")
                    .to_string()
            })
            .unwrap_or_default();
        let modules = dir.join("lib/modules").join(&release);
        if !modules.is_dir() {
            return fail(format!("no lib/modules/{release}"));
        }
        let vmlinux = boot.join(format!("vmlinux-{release}"));
        Ok(Kernel {
            dir: dir.to_path_buf(),
            image: if vmlinux.is_file() { vmlinux } else { vmlinuz },
            modules,
        })
    }

    /// The module files to load for `wanted`, dependencies first.
    pub fn module_closure(&self, wanted: &[&str]) -> Result<Vec<PathBuf>> {
        let mut files = BTreeMap::new();
        index_modules(&self.modules, &mut files)?;
        let mut order = Vec::new();
        for name in wanted {
            self.visit(&files, name, &mut order, &mut Vec::new())?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        files: &BTreeMap<String, PathBuf>,
        name: &str,
        order: &mut Vec<PathBuf>,
        stack: &mut Vec<String>,
    ) -> Result<()> {
        let key = normalize(name);
        let Some(path) = files.get(&key) else {
            return error::KernelSnafu {
                dir: &self.dir,
                reason: format!("module '{name}' is not in the package"),
            }
            .fail();
        };
        if order.contains(path) || stack.contains(&key) {
            return Ok(());
        }
        stack.push(key);
        for dep in depends(&read_file(path)?) {
            self.visit(files, &dep, order, stack)?;
        }
        stack.pop();
        order.push(path.clone());
        Ok(())
    }
}

/// Module names treat `-` and `_` alike.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn index_modules(dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for path in list_dir(dir)? {
        if path.is_dir() {
            index_modules(&path, files)?;
        } else if let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            files.insert(normalize(stem), path.clone());
        }
    }
    Ok(())
}

/// The `depends=` list in a module's `.modinfo` strings.
fn depends(module: &[u8]) -> Vec<String> {
    module
        .split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_reads_the_modinfo_list() {
        let module = b"\x7fELF...\0license=GPL\0depends=jbd2,mbcache,crc16\0retpoline=Y\0";
        assert_eq!(depends(module), ["jbd2", "mbcache", "crc16"]);
        assert!(depends(b"\0depends=\0name=crc16\0").is_empty());
        assert!(depends(b"no modinfo").is_empty());
    }
}
