//! The five scenarios of a real machine under qemu: each builds its own disk and boots it again
//! and again, checking the serial console, DATA (debugfs) and the GPT bits (`sgdisk -i`) after
//! every boot.

#![allow(clippy::unwrap_used)]

use node_sim::Outcome;
use signpost::SetId;
use std::path::PathBuf;
use vm_test::{Boot, Data, Lab, Machine, SetFlags, Step};

/// Health checks that pass.
const HEALTHY: &str = "[[check]]\nname = \"datastore readable\"\ncommand = [\"sh\", \"-c\", \"test -e /var/lib/datastore/current\"]\n";
/// Health checks that fail with a message.
const UNHEALTHY: &str = "[[check]]\nname = \"kubelet\"\ncommand = [\"sh\", \"-c\", \"echo 'kubelet did not start' >&2; exit 1\"]\n";

fn lab() -> Option<Lab> {
    Lab::new().unwrap()
}

/// A migration replacing `settings.motd`'s value `old` with `new` (and back going down).
fn replace_motd(lab: &Lab, name: &str, old: &str, new: &str) -> PathBuf {
    let path = lab.dir.path().join(format!("{name}.json"));
    let doc = serde_json::json!({"operations": [{"op": "replace", "key": "settings.motd", "old": old, "new": new}]});
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

/// A fresh machine with 1.0.0 in set A and `settings.motd = "hello"`.
fn fresh(lab: &Lab) -> Machine {
    let first = lab.release("1.0.0", HEALTHY, &[]).unwrap();
    lab.machine(
        "node",
        &first,
        &[("settings.motd", serde_json::json!("hello"))],
    )
    .unwrap()
}

fn boot(machine: &mut Machine, step: Step) -> Boot {
    let boot = machine.boot(step).unwrap();
    eprintln!("serial log: {}", boot.log.display());
    boot
}

/// The boot ran `version` from `set` and its services ended with `exit`.
fn assert_ran(boot: &Boot, set: &str, version: &str, exit: u8) {
    let markers = boot.markers().join("\n");
    assert!(
        boot.has(&format!("\"set\":\"{set}\"")),
        "the firmware did not choose set {set}:\n{markers}"
    );
    assert!(
        boot.has(&format!("root: version {version} running")),
        "{version} did not run:\n{markers}"
    );
    assert!(
        boot.has(&format!("services: exit {exit}")),
        "boot services did not exit {exit}:\n{markers}"
    );
    assert!(boot.has("power off"), "no clean power-off:\n{markers}");
}

/// The boot's update step installed the release (`update-image`) and applied it
/// (`update-apply`).
fn assert_installed(boot: &Boot) {
    for step in ["update-image", "update-apply"] {
        assert!(
            boot.has(&format!("{step}: exit 0")),
            "{}",
            boot.markers().join("\n")
        );
    }
}

/// The boot after set B's failed try fell back: set A's 1.0.0 ran, DATA records the fallback
/// from `from`, the datastore is back at 1.0.0 and confirmed, and set B is not marked. Returns
/// DATA for further checks.
fn assert_fell_back(machine: &Machine, back: &Boot, from: &str) -> Data {
    assert_ran(back, "A", "1.0.0", 0);
    let data = machine.data().unwrap();
    let rec = data.last_boot().unwrap();
    assert_eq!(rec.fell_back_from.as_deref(), Some(from), "{rec:?}");
    assert_eq!(data.datastore().unwrap(), ("1.0.0".to_string(), true));
    assert!(!machine.flags(SetId::B).unwrap().successful);
    data
}

fn marked(priority: u8) -> SetFlags {
    SetFlags {
        priority,
        tries_left: 0,
        successful: true,
    }
}

/// Set B installed and applied, not booted yet: priority 2, its one try left.
const APPLIED: SetFlags = SetFlags {
    priority: 2,
    tries_left: 1,
    successful: false,
};

/// Set B after its one try, not marked: priority 2, no tries left.
const TRY_SPENT: SetFlags = SetFlags {
    priority: 2,
    tries_left: 0,
    successful: false,
};

#[test]
fn a_fresh_disk_boots_set_a_and_marks_it() {
    let Some(lab) = lab() else { return };
    let mut machine = fresh(&lab);
    assert!(!machine.boot_ever_succeeded().unwrap());
    let boot = boot(&mut machine, Step::None);
    assert_ran(&boot, "A", "1.0.0", 0);
    assert!(
        boot.serial.contains("verity 0 "),
        "the root was not opened with dm-verity"
    );
    let data = machine.data().unwrap();
    let rec = data.last_boot().unwrap();
    assert_eq!(
        (rec.set.as_str(), rec.version.as_deref(), rec.outcome),
        ("A", Some("1.0.0"), Outcome::Healthy),
        "{rec:?}"
    );
    assert_eq!(data.datastore().unwrap(), ("1.0.0".to_string(), true));
    assert_eq!(
        data.setting("settings.motd").unwrap().as_deref(),
        Some("\"hello\"")
    );
    assert!(machine.boot_ever_succeeded().unwrap());
    assert_eq!(machine.flags(SetId::A).unwrap(), marked(1));
}

#[test]
fn an_update_from_the_offline_repository_boots_from_b_and_migrates_forward() {
    let Some(lab) = lab() else { return };
    let mut machine = fresh(&lab);
    let migration = replace_motd(&lab, "motd-1.1.0", "hello", "hello from 1.1.0");
    lab.release("1.1.0", HEALTHY, &[migration]).unwrap();
    machine.write_repo_disk(&lab).unwrap();

    let install = boot(&mut machine, Step::Update);
    assert_ran(&install, "A", "1.0.0", 0);
    assert_installed(&install);
    assert_eq!(machine.flags(SetId::B).unwrap(), APPLIED);
    let data = machine.data().unwrap();
    assert_eq!(data.last_boot().unwrap().version.as_deref(), Some("1.0.0"));
    assert_eq!(data.datastore().unwrap(), ("1.0.0".to_string(), true));

    let updated = boot(&mut machine, Step::None);
    assert_ran(&updated, "B", "1.1.0", 0);
    let data = machine.data().unwrap();
    let rec = data.last_boot().unwrap();
    assert_eq!(
        (rec.set.as_str(), rec.version.as_deref(), rec.outcome),
        ("B", Some("1.1.0"), Outcome::Marked),
        "{rec:?}"
    );
    assert!(
        rec.migration.as_deref().unwrap().contains("forward"),
        "{rec:?}"
    );
    assert_eq!(data.datastore().unwrap(), ("1.1.0".to_string(), true));
    assert_eq!(
        data.setting("settings.motd").unwrap().as_deref(),
        Some("\"hello from 1.1.0\"")
    );
    assert_eq!(machine.flags(SetId::B).unwrap(), marked(2));
    assert_eq!(machine.flags(SetId::A).unwrap(), marked(1));
}

#[test]
fn a_release_that_fails_its_health_check_falls_back_and_the_datastore_moves_back() {
    let Some(lab) = lab() else { return };
    let mut machine = fresh(&lab);
    let migration = replace_motd(&lab, "motd-1.2.0", "hello", "hello from 1.2.0");
    lab.release("1.2.0", UNHEALTHY, &[migration]).unwrap();
    machine.write_repo_disk(&lab).unwrap();
    let install = boot(&mut machine, Step::Update);
    assert_installed(&install);
    assert_eq!(
        machine.data().unwrap().last_boot().unwrap().outcome,
        Outcome::Healthy
    );

    // 1.2.0 boots once: its migration runs, its health check fails, it is not marked.
    let failed = boot(&mut machine, Step::None);
    assert_ran(&failed, "B", "1.2.0", 10);
    let data = machine.data().unwrap();
    let rec = data.last_boot().unwrap();
    assert_eq!(rec.outcome, Outcome::HealthFailed, "{rec:?}");
    assert!(rec.reason.contains("kubelet did not start"), "{rec:?}");
    assert_eq!(data.datastore().unwrap(), ("1.2.0".to_string(), false));
    assert_eq!(
        data.setting("settings.motd").unwrap().as_deref(),
        Some("\"hello from 1.2.0\"")
    );
    assert_eq!(machine.flags(SetId::B).unwrap(), TRY_SPENT);

    // The next boot falls back to the known-good set, whose migrator moves the datastore back.
    let back = boot(&mut machine, Step::None);
    let data = assert_fell_back(&machine, &back, "1.2.0");
    assert_eq!(
        data.setting("settings.motd").unwrap().as_deref(),
        Some("\"hello\"")
    );
}

#[test]
fn dm_verity_refuses_a_corrupted_root_and_the_next_boot_falls_back() {
    let Some(lab) = lab() else { return };
    let mut machine = fresh(&lab);
    let release = lab.release("1.1.0", HEALTHY, &[]).unwrap();
    // 1.1.0 written into set B and applied as updog does (the update scenario shows updog doing
    // it in the guest), then one byte of the new ROOT's init flipped on disk.
    machine.stage(SetId::A, &release).unwrap();
    machine.corrupt(SetId::B, &release, "/sbin/init").unwrap();

    let refused = boot(&mut machine, Step::None);
    assert!(
        refused.has("\"set\":\"B\""),
        "{}",
        refused.markers().join("\n")
    );
    assert!(
        refused.serial.contains("is corrupted"),
        "dm-verity did not report the corrupted block: {}",
        refused.log.display()
    );
    assert!(!refused.has("root: version"), "the corrupted init ran");
    assert!(
        !refused.has("services:"),
        "boot services ran on a corrupted root"
    );
    let data = machine.data().unwrap();
    assert!(
        !data.var_lib().join("twinset/last-boot.json").exists(),
        "a boot was recorded on DATA"
    );
    assert_eq!(machine.flags(SetId::B).unwrap(), TRY_SPENT);

    let back = boot(&mut machine, Step::None);
    assert_fell_back(&machine, &back, "1.1.0");
    assert!(machine.boot_ever_succeeded().unwrap());
}

#[test]
fn a_power_cut_mid_install_boots_the_known_good_set_and_the_update_completes_later() {
    let Some(lab) = lab() else { return };
    let mut machine = fresh(&lab);
    let release = lab.release("1.1.0", HEALTHY, &[]).unwrap();
    machine.write_repo_disk(&lab).unwrap();

    // Cut while updog streams ROOT into set B.
    let cut = machine
        .boot_and_cut_at(
            Step::Update,
            "\"phase\":\"download\",\"version\":\"1.1.0\",\"image\":\"root\"",
        )
        .unwrap();
    eprintln!("serial log: {}", cut.log.display());
    assert!(
        cut.cut,
        "updog never started writing ROOT:\n{}",
        cut.markers().join("\n")
    );
    assert!(
        !cut.has("update-image: exit"),
        "the install finished before the cut"
    );
    assert_eq!(
        machine.flags(SetId::B).unwrap().priority,
        0,
        "a torn set B is bootable"
    );
    assert!(
        !machine.holds(SetId::B, &release).unwrap(),
        "set B was complete at the cut"
    );
    let rec = machine.data().unwrap().last_boot().unwrap();
    assert_eq!((rec.boot, rec.set.as_str()), (1, "A"), "{rec:?}");

    let again = boot(&mut machine, Step::Update);
    assert_ran(&again, "A", "1.0.0", 0);
    assert_installed(&again);

    let rec = machine.data().unwrap().last_boot().unwrap();
    assert_eq!(
        (rec.boot, rec.set.as_str(), rec.outcome),
        (2, "A", Outcome::Healthy),
        "{rec:?}"
    );
    // Completed: set B holds 1.1.0 byte for byte and boots next, once.
    assert!(machine.holds(SetId::B, &release).unwrap());
    assert_eq!(machine.flags(SetId::B).unwrap(), APPLIED);
}
