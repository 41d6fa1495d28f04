//! The five scenarios of a real machine under qemu: each builds its own disk and boots it again
//! and again, checking the serial console, DATA (debugfs) and the GPT bits (`sgdisk -i`) after
//! every boot.

#![allow(clippy::unwrap_used)]

use node_sim::Outcome;
use signpost::SetId;
use std::path::PathBuf;
use vm_test::{Boot, Lab, Machine, SetFlags, Step};

/// Health checks that pass.
const HEALTHY: &str = "[[check]]\nname = \"datastore readable\"\ncommand = [\"sh\", \"-c\", \"test -e /var/lib/datastore/current\"]\n";
/// Health checks that fail with a message.
const UNHEALTHY: &str = "[[check]]\nname = \"kubelet\"\ncommand = [\"sh\", \"-c\", \"echo 'kubelet did not start' >&2; exit 1\"]\n";

fn lab() -> Option<Lab> {
    Lab::new().unwrap()
}

/// A migration replacing `settings.motd`'s value `old` with `new` (and back going down).
fn replace_motd(lab: &Lab, old: &str, new: &str) -> PathBuf {
    let path = lab.dir.path().join(format!("motd-{new}.json"));
    let doc = serde_json::json!({"operations": [{"op": "replace", "key": "settings.motd", "old": old, "new": new}]});
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

/// A fresh machine with 1.0.0 in set A and `settings.motd = "hello"`.
fn fresh(lab: &Lab) -> Machine {
    let first = lab.release("1.0.0", HEALTHY, &[]).unwrap();
    lab.machine("node", &first, &[("settings.motd", serde_json::json!("hello"))])
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

fn marked(priority: u8) -> SetFlags {
    SetFlags {
        priority,
        tries_left: 0,
        successful: true,
    }
}

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
    assert_eq!(data.setting("settings.motd").unwrap().as_deref(), Some("\"hello\""));
    assert!(machine.boot_ever_succeeded().unwrap());
    assert_eq!(machine.flags(SetId::A).unwrap(), marked(1));
}
