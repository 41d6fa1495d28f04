//! End to end: check, install, apply on a node directory against a real repository served over
//! HTTP on loopback (and from file://); the seed, the lock and SIGTERM; each metadata file fetched
//! once per refresh, and again by the next.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signpost::SetId;
use std::process::Stdio;
use std::time::Duration;
use testsys::Fault;

#[test]
fn check_install_verify_and_apply_end_to_end() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    // Nothing newer yet.
    let out = world.updog(&["check-update"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no update available"
    );

    let second = world.release("1.1.0");
    let out = world.updog(&["check-update", "--json"]);
    let stdout = ok(&out);
    let updates: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(updates[0]["version"], "1.1.0", "{stdout}");
    assert_eq!(updates.as_array().unwrap().len(), 1);
    let all: serde_json::Value =
        serde_json::from_str(&ok(&world.updog(&["check-update", "--all", "--json"]))).unwrap();
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "1.1.0 and 1.0.0 are both applicable"
    );

    let before = active_fingerprint(&world.node);
    let out = world.updog(&["update-image", "--progress", "json"]);
    let stdout = ok(&out);
    let phases: Vec<String> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["phase"].as_str().unwrap().to_string()
        })
        .collect();
    for phase in [
        "refresh",
        "cache",
        "clear",
        "download",
        "verify",
        "mark-valid",
        "done",
    ] {
        assert!(
            phases.iter().any(|p| p == phase),
            "no {phase} event: {stdout}"
        );
    }
    assert_eq!(active_fingerprint(&world.node), before, "set A changed");

    // Set B is valid with one try, not yet applied; its partitions hold the new images.
    assert_installed(&world.node, &second);
    // The migration cache is a repository in the published layout.
    let sysroot = &world.node.sysroot;
    assert!(
        sysroot
            .join("var/cache/updog/metadata/1.root.json")
            .is_file()
    );
    assert!(
        sysroot
            .join("var/cache/updog/metadata/timestamp.json")
            .is_file()
    );
    let cached: Vec<String> = std::fs::read_dir(sysroot.join("var/lib/updog/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached.iter().any(|n| n.ends_with(".manifest.json")),
        "{cached:?}"
    );
    let state = world.trusted_state();
    assert!(state.root == 1 && state.timestamp > 1);

    // Apply: B boots next; revert undoes it; apply again.
    assert_eq!(
        ok(&world.updog(&["update-apply"])).trim(),
        "set B boots next"
    );
    assert_eq!(world.node.signpost().unwrap().next_boot(), Some(SetId::B));
    ok(&world.updog(&["update-revert"]));
    assert_eq!(world.node.signpost().unwrap().next_boot(), Some(SetId::A));
    assert_eq!(world.updog(&["update-revert"]).status.code(), Some(3));
    ok(&world.updog(&["update-apply"]));
    let disk = world.node.signpost().unwrap();
    let b = disk.flags(SetId::B);
    assert_eq!((b.priority.get(), b.tries_left.get()), (2, 1));
    assert_eq!(disk.next_boot(), Some(SetId::B));
    // Apply again: nothing to do (exit 3), as revert twice; the table is unchanged.
    let flags = |disk: &signpost::SignpostDisk<std::fs::File>| {
        (disk.flags(SetId::A), disk.flags(SetId::B), disk.next_boot())
    };
    let before = flags(&disk);
    let out = world.updog(&["update-apply"]);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(3), "update in set B already applied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(flags(&world.node.signpost().unwrap()), before);
    let out = world.updog(&["update-revert"]);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(0), "set A boots next")
    );
    let out = world.updog(&["update-revert"]);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(3), "no applied update to revert")
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn update_with_reboot_runs_the_configured_command_and_nothing_staged_is_exit_3() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    assert_eq!(world.updog(&["update-apply"]).status.code(), Some(3));
    world.release("1.1.0");
    let marker = world.work.path().join("rebooted");
    let script = world.work.path().join("reboot.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > {}\n", marker.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let toml = world.node.sysroot.join("etc/updog.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!(
        "reboot_command = [\"{}\", \"now\"]\n",
        script.display()
    ));
    std::fs::write(&toml, text).unwrap();
    ok(&world.updog(&["update", "--reboot", "--progress", "none"]));
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "now");
    assert_eq!(world.node.signpost().unwrap().next_boot(), Some(SetId::B));
}

#[test]
fn a_file_url_repository_installs_offline() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let second = world.release("1.1.0");
    world.use_file_urls();
    world.server.clear_requests();
    ok(&world.updog(&["update-image", "--progress", "none"]));
    assert!(world.server.requests().is_empty(), "nothing went over HTTP");
    assert_installed(&world.node, &second);
}

#[test]
fn the_seed_is_generated_once_and_kept_and_the_config_seed_wins() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let toml = world.node.sysroot.join("etc/updog.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("seed = 42\n", "");
    std::fs::write(&toml, &text).unwrap();
    let seed_file = world.node.sysroot.join("var/lib/updog/seed");
    assert!(!seed_file.exists());
    assert_eq!(world.updog(&["check-update"]).status.code(), Some(3));
    let seed: u32 = std::fs::read_to_string(&seed_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(seed < 2048);
    for _ in 0..2 {
        world.updog(&["check-update"]);
        assert_eq!(
            std::fs::read_to_string(&seed_file).unwrap().trim(),
            seed.to_string()
        );
    }
    // A configured seed wins and leaves the file alone; a bad one is named.
    std::fs::write(&toml, format!("{text}seed = 7\n")).unwrap();
    world.updog(&["check-update"]);
    assert_eq!(
        std::fs::read_to_string(&seed_file).unwrap().trim(),
        seed.to_string()
    );
    std::fs::write(&toml, format!("{text}seed = 5000\n")).unwrap();
    refused(&world.updog(&["check-update"]), &["field 'seed'", "5000"]);
}

#[test]
fn a_second_updater_exits_4_naming_the_holder() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let lock_file = world.lock_file();
    let lock = updog::UpdateLock::acquire(&lock_file, "updog update-image").unwrap();
    let before = active_fingerprint(&world.node);
    for verb in ["update-image", "update-apply"] {
        locked(
            &world.updog(&[verb]),
            "updog",
            &lock_file,
            std::process::id(),
        );
    }
    assert_eq!(active_fingerprint(&world.node), before);
    drop(lock);
    assert_eq!(world.updog(&["update-image"]).status.code(), Some(3));
}

#[test]
fn sigterm_during_an_install_leaves_the_set_unbootable_and_the_lock_free() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    // Stall well after the start of the root image, for longer than the test waits.
    let name = world.fault_on_root(Fault::StallAfter(4000, Duration::from_secs(20)), None);
    // Without the cancel, the download would finish after the stall and the install succeed.
    assert_refused_with(&world, &["cancelled"], assert_inactive_unbootable, || {
        let child =
            testsys::updog_command(&world.node.sysroot, &["update-image", "--progress", "json"])
                .env("UPDOG_READ_TIMEOUT_MS", "60000")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
        wait_for_body(&world.server, &name);
        std::thread::sleep(Duration::from_millis(300));
        let lock = std::fs::read_to_string(world.lock_file()).unwrap();
        assert!(lock.contains(&child.id().to_string()), "{lock}");
        sigterm(child)
    });
    // The lock is free: another updater may take it at once.
    updog::UpdateLock::acquire(&world.lock_file(), "test").unwrap();
}

#[test]
fn a_stalled_transfer_times_out_per_read_and_resumes() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let second = world.release("1.1.0");
    let name = world.fault_on_root(Fault::StallAfter(4000, Duration::from_secs(30)), Some(1));
    let out = world
        .update_image_command()
        .env("UPDOG_READ_TIMEOUT_MS", "1000")
        .output()
        .unwrap();
    ok(&out);
    // A stall waited out would show no second request: the resumed range proves the read
    // timed out and the transfer went on from where it stopped.
    assert!(
        requests_for(&world.server, &name)
            .iter()
            .any(|r| r.range.as_deref() == Some("bytes=4000-")),
        "{:?}",
        world.server.requests()
    );
    assert_installed(&world.node, &second);
}

#[test]
fn an_install_fetches_each_metadata_file_once_and_caches_the_bytes_it_verified() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    world.server.clear_requests();
    ok(&world.updog(&["update-image"]));
    let log = world.server.requests();
    let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    // tough loads timestamp, snapshot and targets, updog the manifest; the cache for the
    // migrator takes the same bytes again without asking the server.
    for name in [
        "/timestamp.json",
        ".snapshot.json",
        ".targets.json",
        ".manifest.json",
    ] {
        let n = log
            .iter()
            .filter(|r| r.status == 200 && r.path.ends_with(name))
            .count();
        assert_eq!(n, 1, "{name} fetched {n} times: {paths:?}");
    }
    let served =
        std::fs::read(world.repo.repo_dir().metadata_dir().join("timestamp.json")).unwrap();
    let cached = std::fs::read(
        updog::Paths::new(&world.node.sysroot)
            .metadata_cache
            .join("timestamp.json"),
    )
    .unwrap();
    assert_eq!(cached, served);
}

#[test]
fn a_second_refresh_in_one_process_fetches_the_metadata_again_and_sees_a_new_release() {
    if !tools_present() {
        return;
    }
    // The update API keeps one updater for its whole life: what a refresh keeps of the
    // metadata must not outlive that refresh.
    let world = World::new();
    let updater = updog::Updater::new(&world.node.sysroot, None).unwrap();
    let versions = |r: &updog::Refreshed| -> Vec<String> {
        r.manifest
            .updates()
            .iter()
            .map(|u| u.version.to_string())
            .collect()
    };
    let first = block_on(updater.refresh()).unwrap();
    assert_eq!(versions(&first), ["1.0.0"]);
    world.release("1.1.0");
    world.server.clear_requests();
    let second = block_on(updater.refresh()).unwrap();
    let mut seen = versions(&second);
    seen.sort();
    assert_eq!(seen, ["1.0.0", "1.1.0"]);
    let timestamps = requests_for(&world.server, "/timestamp.json").len();
    assert_eq!(timestamps, 1);
}
