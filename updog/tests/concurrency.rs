//! Two updaters at once, and signpost during an install: the install that holds the update lock
//! proceeds; every other writer refuses at once with exit code 4 and one line naming it; readers
//! answer; and when the install is let go it finishes with the images it was writing, intact.
//! Checks, which take no lock, run side by side and all give the same answer.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    World, active_fingerprint, assert_inactive_unbootable, assert_installed, locked, ok,
    tools_present,
};
use signpost::SetId;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use testsys::Fault;

/// Starts `updog update-image` whose root image download pauses after 4000 bytes, and waits
/// until it is paused there, holding the lock with set B half written.
fn paused_install(world: &World, version: &str) -> Child {
    world
        .inject_target(
            &format!("{version}-root.ext4.lz4"),
            Fault::PauseAfter(4000),
            Some(1),
        )
        .unwrap();
    let mut child = world
        .update_image_command()
        // Longer than any wait here: the pause must not end in a read timeout and a retry.
        .env("UPDOG_READ_TIMEOUT_MS", "600000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while world.server.paused() == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the install ended ({status}) before its pause: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "the root download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Runs the signpost binary against the node.
fn signpost(sysroot: &Path, args: &[&str]) -> Output {
    testsys::run_signpost(sysroot, args).unwrap()
}

/// Set B's BOOT attribute flags as `sgdisk -i` reads them from the node's disk (a GPT parser
/// nobody here wrote), or `None` when sgdisk is missing outside CI.
fn sgdisk_set_b_flags(world: &World) -> Option<u64> {
    let sgdisk = test_tools::require_tool("sgdisk")?;
    let number = world
        .node
        .signpost()
        .unwrap()
        .partitions(SetId::B)
        .boot
        .number;
    let out = test_tools::run(
        Command::new(sgdisk)
            .arg("-i")
            .arg(number.to_string())
            .arg(world.node.sysroot.join(testsys::DISK_IMAGE)),
    );
    let flags = out
        .lines()
        .find_map(|l| l.strip_prefix("Attribute flags:"))
        .unwrap_or_else(|| panic!("no attribute flags in:\n{out}"));
    Some(u64::from_str_radix(flags.trim(), 16).unwrap())
}

#[test]
fn one_install_proceeds_while_other_updaters_and_signpost_refuse_naming_it() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let second = world.release("1.1.0");
    let before = active_fingerprint(&world.node);
    let sysroot = world.node.sysroot.clone();
    let lock = world.lock_file();

    let install = paused_install(&world, "1.1.0");
    // Set B is cleared and partly written: BOOT and HASH are in, ROOT has 4000 bytes.
    assert_inactive_unbootable(&world.node);

    // A second updater, whatever its verb, refuses at once and touches nothing.
    for verb in [
        &["update-image", "--progress", "none"][..],
        &["update", "--progress", "none"],
        &["update-apply"],
        &["update-revert"],
    ] {
        locked(&world.updog(verb), "updog", &lock, install.id());
    }
    // signpost's writing verbs refuse too: the half-written set cannot be made bootable.
    for verb in [
        "mark-inactive-valid",
        "upgrade-to-inactive",
        "rollback-to-inactive",
        "clear-inactive",
        "cancel-upgrade",
    ] {
        locked(
            &signpost(&sysroot, &[verb]),
            "signpost",
            &lock,
            install.id(),
        );
    }
    assert_inactive_unbootable(&world.node);
    if let Some(flags) = sgdisk_set_b_flags(&world) {
        // Priority (bits 48-51), tries (52-55) and successful (56) all zero.
        assert_eq!(
            flags & (0x1ff << 48),
            0,
            "sgdisk reads set B flags {flags:#018x}"
        );
    }
    assert_eq!(active_fingerprint(&world.node), before, "set A changed");

    // Readers answer during the install.
    let status: serde_json::Value =
        serde_json::from_str(&ok(&signpost(&sysroot, &["status", "--json"]))).unwrap();
    assert_eq!(status["active"], "A");
    assert_eq!(status["B"]["bootable"], false);
    let check = ok(&world.updog(&["check-update"]));
    assert!(check.starts_with("demo x86_64 1.1.0"), "{check}");

    // Let the install go: it completes with intact images and a valid set B.
    world.server.resume();
    ok(&install.wait_with_output().unwrap());
    assert_installed(&world.node, &second);
    if let Some(flags) = sgdisk_set_b_flags(&world) {
        assert_eq!(flags & (0x1ff << 48), 1 << 52, "sgdisk reads {flags:#018x}");
    }
    assert_eq!(active_fingerprint(&world.node), before, "set A changed");
    // The lock is free again: signpost may now flip to the verified set.
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
    ok(&signpost(&sysroot, &["upgrade-to-inactive"]));
    assert_eq!(world.node.signpost().unwrap().next_boot(), Some(SetId::B));
}

#[test]
fn concurrent_checks_all_answer_alike() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    for round in 0..3 {
        // A new publish each round, so every check has new metadata to persist.
        if round > 0 {
            world.release(&format!("1.1.{round}"));
        }
        let children: Vec<Child> = (0..8)
            .map(|_| {
                testsys::updog_command(&world.node.sysroot, &["check-update"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = ok(&out);
            let expected = if round == 0 {
                "1.1.0"
            } else {
                &format!("1.1.{round}")
            };
            assert!(
                stdout.starts_with(&format!("demo x86_64 {expected} ")),
                "round {round}: {stdout}"
            );
        }
    }
}
