//! The verbs a real machine's boot uses: `node-sim verity-table` in the initramfs after
//! `signpost boot-select`, and `node-sim services` in the verified root (the qemu machine in
//! vm-test runs them on a real disk; here they run on a node in a directory).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use node_sim::Outcome;
use signpost::SetId;
use testsys::TestNode;

/// The initramfs's part: `signpost boot-select` on the disk, then the chosen ROOT's files
/// where the verified root would show them.
fn firmware(node: &TestNode) -> SetId {
    let out = command("signpost", "signpost", &node.sysroot, &["--disk"])
        .arg(&node.disk)
        .args(["boot-select", "--json"])
        .output()
        .unwrap();
    let chosen: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let set: SetId = chosen["set"].as_str().unwrap().parse().unwrap();
    node.expose_booted_files(set).unwrap();
    let root = node.signpost().unwrap().partitions(set).root.clone();
    let region = image_builder::ImageRegion::new(
        std::fs::File::open(&node.disk).unwrap(),
        root.byte_range().start,
        root.size_bytes(),
    );
    let checks = node.sysroot.join("etc/twinset/health-checks.toml");
    match image_builder::read_root_info(region).unwrap().health_checks {
        Some(text) => {
            std::fs::create_dir_all(checks.parent().unwrap()).unwrap();
            std::fs::write(&checks, text).unwrap();
        }
        None => {
            let _ = std::fs::remove_file(&checks);
        }
    }
    set
}

#[test]
fn services_mark_a_healthy_set_and_a_failed_one_falls_back() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_, node, sim) = world.first_node(HEALTHY);
    assert_eq!(firmware(&node), SetId::A);
    let boot = sim.start_services().unwrap();
    assert_eq!(
        (boot.set.as_str(), boot.outcome),
        ("A", Outcome::Healthy),
        "{boot:?}"
    );
    assert!(node.signpost().unwrap().has_boot_ever_succeeded());

    let good = world.release("1.1.0", HEALTHY, &[]);
    stage(&node, &world.repo, &good);
    assert_eq!(firmware(&node), SetId::B);
    let out = node_sim(&node.sysroot, &["services", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<node_sim::BootRecord> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (records[0].version.as_deref(), records[0].outcome),
        (Some("1.1.0"), Outcome::Marked),
        "{records:?}"
    );
    assert!(node.signpost().unwrap().flags(SetId::B).successful);

    let bad = world.release("1.2.0", UNHEALTHY, &[]);
    stage(&node, &world.repo, &bad);
    assert_eq!(firmware(&node), SetId::A);
    let out = node_sim(&node.sysroot, &["services"]);
    assert_eq!(
        out.status.code(),
        Some(10),
        "a failed health gate asks for a reboot: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("health checks failed"));
    assert_eq!(firmware(&node), SetId::B, "the bootloader falls back");
    let back = sim.start_services().unwrap();
    assert_eq!(
        (back.version.as_deref(), back.fell_back_from.as_deref()),
        (Some("1.1.0"), Some("1.2.0")),
        "{back:?}"
    );
}

#[test]
fn services_need_the_booted_set_and_the_image_files() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (_, node, _) = world.first_node(HEALTHY);
    std::fs::remove_file(node.sysroot.join("run/booted-set")).unwrap();
    std::fs::write(node.sysroot.join("proc/cmdline"), "console=ttyS0\n").unwrap();
    let out = node_sim(&node.sysroot, &["services"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Failed to find the booted set"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    firmware(&node);
    std::fs::write(
        node.sysroot.join("etc/os-release"),
        "VERSION_ID=not-a-version\n",
    )
    .unwrap();
    let out = node_sim(&node.sysroot, &["services"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("os-release"), "{err}");
    assert!(
        !node.sysroot.join(node_sim::record::LAST_BOOT).exists(),
        "a refused start records no boot"
    );
}

#[test]
fn verity_table_opens_the_chosen_root_with_the_parameters_in_its_boot() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let (first, node, _) = world.first_node(HEALTHY);
    let second = world.release("1.1.0", HEALTHY, &[]);
    stage(&node, &world.repo, &second);
    assert_eq!(firmware(&node), SetId::B);

    let parts = node.signpost().unwrap().partitions(SetId::B).clone();
    let dev = |n: u32| node_sim::partition_device(&node.disk, n);
    let expected = format!(
        "{} 1 restart_on_corruption",
        second
            .images
            .verity
            .dm_table(&dev(parts.root.number), &dev(parts.hash.number))
    );
    let out = node_sim(&node.sysroot, &["verity-table"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    assert!(expected.contains(&second.images.verity.root_hash().to_string()));

    // An explicit set; set A holds 1.0.0.
    let out = node_sim(&node.sysroot, &["verity-table", "--set", "A"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&first.images.verity.root_hash().to_string()),
        "{table}"
    );

    // A BOOT without verity parameters is refused in one line naming the set.
    let boot = node.signpost().unwrap().partitions(SetId::A).boot.clone();
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&node.disk)
        .unwrap();
    file.seek(SeekFrom::Start(boot.byte_range().start)).unwrap();
    file.write_all(&vec![0u8; 1 << 20]).unwrap();
    let out = node_sim(&node.sysroot, &["verity-table", "--set", "A"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("node-sim: Failed to read the verity parameters of set A"),
        "{err}"
    );
}
