//! The update lock from the command line: while updog, the update API or another signpost holds
//! `<sysroot>/run/updog.lock`, every verb that writes the table refuses with exit code 4 and one
//! line naming the holder, and writes nothing; `status` still answers, and leaves a damaged copy
//! for after the lock is released.
#![allow(clippy::unwrap_used)]

mod common;

use common::{corrupt, ok_stdout, ok_verb, run_signpost, s, small_image_args, status_json};
use signpost::lock::{UpdateLock, lock_path};
use std::fs;
use std::path::Path;

/// A node directory with a disk whose set A booted successfully.
fn node(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("disk.img");
    let mut create = small_image_args(&img);
    create.extend(["--sysroot", s(dir)]);
    ok_stdout(&create);
    ok_verb("boot-select", &img, dir);
    ok_verb("mark-successful-boot", &img, dir);
    img
}

#[test]
fn every_verb_that_writes_refuses_while_an_install_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let img = node(dir.path());
    let before = fs::read(&img).unwrap();
    let held = UpdateLock::acquire(&lock_path(dir.path()), "updog update-image").unwrap();
    let holder = format!(
        "signpost: Failed to take the update lock '{}': it is held by pid {} (updog update-image)",
        lock_path(dir.path()).display(),
        std::process::id()
    );
    for verb in [
        "mark-inactive-valid",
        "upgrade-to-inactive",
        "clear-inactive",
        "cancel-upgrade",
        "rollback-to-inactive",
        "mark-successful-boot",
        "boot-select",
    ] {
        let out = run_signpost(&[verb, "--disk", s(&img), "--sysroot", s(dir.path())]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{verb}: {stderr}");
        assert_eq!(stderr.trim_end(), holder, "{verb}");
        assert!(out.stdout.is_empty(), "{verb}");
    }
    let out = run_signpost(&[
        "create-disk",
        "--disk",
        s(&img),
        "--force",
        "--sysroot",
        s(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end(), holder);
    assert!(fs::read(&img).unwrap() == before, "a refused verb wrote");

    // Reading verbs work, and say what is on disk: set B still unbootable.
    let st = status_json(&img, &["--sysroot", s(dir.path())]);
    assert_eq!(st["active"], "A");
    assert_eq!(st["B"]["priority"], 0);
    assert_eq!(st["B"]["tries_left"], 0);
    assert_eq!(st["B"]["bootable"], false);
    assert_eq!(
        ok_verb("has-boot-ever-succeeded", &img, dir.path()).trim(),
        "true"
    );
    assert!(fs::read(&img).unwrap() == before, "a reading verb wrote");

    // Released: the same verb goes through.
    drop(held);
    ok_verb("mark-inactive-valid", &img, dir.path());
    let st = status_json(&img, &["--sysroot", s(dir.path())]);
    assert_eq!(st["B"]["tries_left"], 1);
}

#[test]
fn status_repairs_a_damaged_copy_only_when_nobody_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let img = node(dir.path());
    let good = fs::read(&img).unwrap();
    let len = good.len() as u64;
    corrupt(&img, len - 512 + 24); // inside the backup header
    let damaged = fs::read(&img).unwrap();
    let status = || status_json(&img, &["--sysroot", s(dir.path())]);

    // A writer holds the lock: what looks damaged may be its table write in progress.
    let held = UpdateLock::acquire(&lock_path(dir.path()), "updog update-image").unwrap();
    let st = status();
    assert_eq!(st["table"]["backup"]["state"], "invalid");
    assert_eq!(st["table"]["repaired"], false);
    assert_eq!(st["A"]["bootable"], true);
    assert!(
        fs::read(&img).unwrap() == damaged,
        "status wrote under a held lock"
    );

    drop(held);
    let st = status();
    assert_eq!(st["table"]["repaired"], true);
    assert!(
        fs::read(&img).unwrap() == good,
        "the backup was not rewritten as it was"
    );
    // The lock file names nobody once status is done with it.
    assert_eq!(fs::read_to_string(lock_path(dir.path())).unwrap(), "");
}
