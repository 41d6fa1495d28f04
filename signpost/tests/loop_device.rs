//! signpost on a real block device: a created image attached to a loop device.
#![allow(clippy::unwrap_used)] // Test helpers: a panic is how a test reports failure.

mod common;

use common::{ok_stdout, sgdisk_info, status_json};
use std::path::Path;
use std::process::Command;

/// Detaches the loop device however the test ends.
struct LoopGuard {
    losetup: std::path::PathBuf,
    device: String,
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        let status = Command::new(&self.losetup)
            .arg("-d")
            .arg(&self.device)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("warning: could not detach {}", self.device);
        }
    }
}

fn attach(losetup: &Path, img: &Path) -> Option<LoopGuard> {
    let out = Command::new(losetup)
        .args(["--find", "--show", "-P"])
        .arg(img)
        .output()
        .expect("run losetup");
    if !out.status.success() {
        return test_tools::skip_or_fail(&format!(
            "losetup cannot attach a loop device here (needs root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Some(LoopGuard {
        losetup: losetup.to_path_buf(),
        device: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    })
}

#[test]
fn status_and_a_transition_on_a_loop_device() {
    let Some(losetup) = test_tools::require_tool("losetup") else {
        return;
    };
    let Some(sgdisk) = test_tools::require_tool("sgdisk") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = common::create_image(dir.path(), "disk.img", 100);
    {
        let Some(guard) = attach(&losetup, &img) else {
            return;
        };
        let dev = guard.device.as_str();
        eprintln!("attached {} as {dev}", img.display());
        let st = status_json(Path::new(dev), &["--active-set", "A"]);
        assert_eq!(st["disk"], dev);
        assert_eq!(st["A"]["bootable"], true);
        assert_eq!(st["next_boot"], "A");
        assert_eq!(
            st["table"]["backup"]["state"], "good",
            "the backup is at the device's end"
        );

        ok_stdout(&["mark-successful-boot", "--disk", dev, "--active-set", "A"]);
        ok_stdout(&["mark-inactive-valid", "--disk", dev, "--active-set", "A"]);
        let ever = ok_stdout(&["has-boot-ever-succeeded", "--disk", dev]);
        assert_eq!(ever.trim(), "true");
    }
    // Detached: the image holds what was written through the device.
    let private = sgdisk_info(&sgdisk, &img, 9);
    assert_eq!(private.attributes, 1 << 57);
    let boot_b = sgdisk_info(&sgdisk, &img, 5);
    assert_eq!(boot_b.attributes, 1 << 52, "set B has one try");
}
