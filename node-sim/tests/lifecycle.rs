//! The boot lifecycle on a node in a directory: bootloader, dm-verity check, migrator, health
//! gate, mark-successful-boot, and every way a new set fails and falls back.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use node_sim::Outcome;
use signpost::SetId;

#[test]
fn a_first_boot_is_marked_and_an_update_with_a_migration_is_confirmed() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_, node, sim) = world.first_node(HEALTHY);

    assert!(!node.signpost().unwrap().has_boot_ever_succeeded());
    let boot = sim.boot().unwrap();
    // A factory-fresh set A is marked already; the boot records that a boot succeeded.
    assert_eq!(boot.outcome, Outcome::Healthy, "{boot:?}");
    assert_eq!(boot.version.as_deref(), Some("1.0.0"));
    assert!(node.signpost().unwrap().has_boot_ever_succeeded());
    assert_eq!(datastore_version(&node.sysroot), "1.0.0");

    let migration = world.add_setting_migration("add-motd", "settings.motd", "hello from 1.1.0");
    let second = world.release("1.1.0", HEALTHY, &[migration]);
    stage(&node, &world.repo, &second);
    let boot = sim.boot().unwrap();
    assert_eq!(boot.outcome, Outcome::Marked, "{boot:?}");
    assert_eq!(boot.set, "B");
    assert_eq!(datastore_version(&node.sysroot), "1.1.0");
    assert_eq!(
        setting(&node.sysroot, "settings.motd").as_deref(),
        Some("\"hello from 1.1.0\"")
    );
    let os_release = std::fs::read_to_string(node.sysroot.join("etc/os-release")).unwrap();
    assert!(os_release.contains("VERSION_ID=1.1.0"));
    let disk = node.signpost().unwrap();
    assert!(disk.flags(SetId::B).successful);
    assert!(disk.has_boot_ever_succeeded());
    assert!(
        migrator::status(&node.sysroot.join("var/lib/datastore"))
            .unwrap()
            .unwrap()
            .confirmed
    );
}

/// Stages `bad` on a node running 1.1.0 (with its settings migrated) and boots until settled.
fn fall_back_from(
    checks: &str,
    corrupt_root: bool,
) -> (World, testsys::TestNode, Vec<node_sim::BootRecord>) {
    let world = World::new();
    let (_, node, sim) = world.first_node(HEALTHY);
    sim.boot().unwrap();
    let up = world.add_setting_migration("add-motd", "settings.motd", "hello");
    let second = world.release("1.1.0", HEALTHY, &[up]);
    stage(&node, &world.repo, &second);
    assert_eq!(sim.boot().unwrap().outcome, Outcome::Marked);

    let down = world.add_setting_migration("add-color", "settings.color", "blue");
    let bad = world.release("1.2.0", checks, &[down]);
    stage(&node, &world.repo, &bad);
    if corrupt_root {
        // The motd of 1.2.0, in set A (a data block of a file: dm-verity's tree covers it).
        corrupt_root_block(&node, SetId::A, b"1.2.0");
    }
    let boots = sim.boot_until_settled(3).unwrap();
    (world, node, boots)
}

#[test]
fn a_failing_health_check_falls_back_with_the_settings_of_the_good_set() {
    if !tools_present() {
        return;
    }
    let (_world, node, boots) = fall_back_from(UNHEALTHY, false);
    assert_eq!(boots.len(), 2, "{boots:#?}");
    assert_eq!(boots[0].outcome, Outcome::HealthFailed);
    assert_eq!(boots[0].version.as_deref(), Some("1.2.0"));
    assert!(
        boots[0].reason.contains("kubelet did not start"),
        "{}",
        boots[0].reason
    );
    // The 1.2.0 boot migrated forward (settings.color appeared) but was never confirmed...
    assert_eq!(boots[1].outcome, Outcome::Healthy);
    assert_eq!(boots[1].version.as_deref(), Some("1.1.0"));
    assert_eq!(boots[1].fell_back_from.as_deref(), Some("1.2.0"));
    // ...so the fallback boot flipped the datastore back to the kept 1.1.0 directory.
    assert!(
        boots[1]
            .migration
            .as_deref()
            .unwrap()
            .starts_with("Fell back from unconfirmed 1.2.0")
    );
    assert_eq!(datastore_version(&node.sysroot), "1.1.0");
    assert_eq!(
        setting(&node.sysroot, "settings.motd").as_deref(),
        Some("\"hello\"")
    );
    assert_eq!(setting(&node.sysroot, "settings.color"), None);
    assert_eq!(
        node_sim::record::failed_versions(&node.sysroot).unwrap(),
        ["1.2.0"]
    );
    let disk = node.signpost().unwrap();
    assert!(!disk.flags(SetId::A).successful && disk.flags(SetId::A).tries_left.get() == 0);
    let last = node_sim::record::last_boot(&node.sysroot).unwrap().unwrap();
    assert_eq!(last, boots[1]);
}

#[test]
fn a_hanging_health_check_times_out_and_falls_back() {
    if !tools_present() {
        return;
    }
    let (_world, node, boots) = fall_back_from(HANGS, false);
    assert_eq!(boots[0].outcome, Outcome::HealthFailed);
    assert!(
        boots[0].reason.contains("timed out after 1 s"),
        "{}",
        boots[0].reason
    );
    assert_eq!(boots[1].version.as_deref(), Some("1.1.0"));
    assert_eq!(datastore_version(&node.sysroot), "1.1.0");
}

#[test]
fn a_corrupted_root_fails_to_boot_like_dm_verity_and_falls_back() {
    if !tools_present() {
        return;
    }
    let (_world, node, boots) = fall_back_from(HEALTHY, true);
    assert_eq!(boots[0].outcome, Outcome::VerityFailed, "{boots:#?}");
    assert!(
        boots[0].reason.contains("dm-verity refuses ROOT"),
        "{}",
        boots[0].reason
    );
    assert_eq!(
        boots[0].version, None,
        "nothing from the refused ROOT is trusted"
    );
    assert_eq!(boots[1].version.as_deref(), Some("1.1.0"));
    // Nothing of 1.2.0 ran: the datastore never left 1.1.0.
    assert_eq!(datastore_version(&node.sysroot), "1.1.0");
    let os_release = std::fs::read_to_string(node.sysroot.join("etc/os-release")).unwrap();
    assert!(os_release.contains("VERSION_ID=1.1.0"));
}

#[test]
fn a_failing_check_on_a_marked_set_is_reported_and_never_reboots() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_, node, sim) = world.first_node("[[check]]\nname = \"flag file\"\ncommand = [\"sh\", \"-c\", \"test ! -e \\\"$TWINSET_SYSROOT/break-me\\\"\"]\n");
    assert_eq!(sim.boot().unwrap().outcome, Outcome::Healthy);
    std::fs::write(node.sysroot.join("break-me"), b"").unwrap();
    let boots = sim.boot_until_settled(3).unwrap();
    assert_eq!(boots.len(), 1);
    assert_eq!(boots[0].outcome, Outcome::Degraded);
    assert!(boots[0].reason.contains("flag file"));
    assert!(
        node_sim::record::failed_versions(&node.sysroot)
            .unwrap()
            .is_empty()
    );
    assert!(node.signpost().unwrap().flags(SetId::A).successful);
}

#[test]
fn a_fallback_is_recorded_once_by_the_boot_that_falls_back() {
    if !tools_present() {
        return;
    }
    let (_world, node, boots) = fall_back_from(UNHEALTHY, false);
    assert_eq!(boots[1].fell_back_from.as_deref(), Some("1.2.0"));
    let sim = node_sim::Node::open(&node.sysroot, None).unwrap();
    // The failed set keeps priority 2 with no tries left: later boots are no fallbacks.
    for _ in 0..3 {
        let boot = sim.boot().unwrap();
        assert_eq!(
            (boot.outcome, boot.fell_back_from.as_deref()),
            (Outcome::Healthy, None),
            "{boot:?}"
        );
    }
    // A deleted failed-versions.json stays deleted: 1.2.0 may be offered again.
    let failed = node.sysroot.join(node_sim::record::FAILED_VERSIONS);
    std::fs::remove_file(&failed).unwrap();
    for _ in 0..3 {
        let boot = sim.boot().unwrap();
        assert_eq!(boot.fell_back_from, None, "{boot:?}");
        assert!(!failed.exists(), "boot {} wrote it again", boot.boot);
    }
}

#[test]
fn a_try_that_never_finished_is_recorded_as_a_fallback_once() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_, node, sim) = world.first_node(HEALTHY);
    assert_eq!(sim.boot().unwrap().outcome, Outcome::Healthy);
    let bad = world.release("1.1.0", HEALTHY, &[]);
    stage(&node, &world.repo, &bad);
    // The try's boot chose set B and spent its try, then the power went: no record of it.
    assert_eq!(node.signpost().unwrap().boot_select().unwrap(), SetId::B);
    let boot = sim.boot().unwrap();
    assert_eq!(
        (boot.set.as_str(), boot.fell_back_from.as_deref()),
        ("A", Some("1.1.0")),
        "{boot:?}"
    );
    assert_eq!(
        node_sim::record::failed_versions(&node.sysroot).unwrap(),
        ["1.1.0"]
    );
    let boot = sim.boot().unwrap();
    assert_eq!(boot.fell_back_from, None, "{boot:?}");
}
