//! Agreement with `sgdisk` (GPT fdisk), a tool nobody here wrote: what signpost writes, sgdisk
//! reads the same way, and what sgdisk writes, signpost reads the same way.
#![allow(clippy::unwrap_used)] // Test helpers: a panic is how a test reports failure.

mod common;

use common::{ok_verb, s, sgdisk_info, status_json};
use serde_json::Value;
use signpost::PartitionType;
use std::path::Path;
use std::process::Command;

const OWNED: u64 = signpost::attrs::OWNED_BITS_MASK;

fn partitions(set: &Value) -> Vec<&Value> {
    let mut parts = vec![&set["boot"], &set["root"], &set["hash"]];
    if !set["reserved"].is_null() {
        parts.push(&set["reserved"]);
    }
    parts
}

/// Every partition signpost reports matches `sgdisk -i`, and bits 48–57 agree.
fn assert_agrees(sgdisk: &Path, img: &Path, sysroot: &Path, step: &str) {
    let st = status_json(img, &["--sysroot", s(sysroot)]);
    let mut all = Vec::new();
    for set in ["A", "B"] {
        all.extend(partitions(&st[set]));
        let sg = sgdisk_info(
            sgdisk,
            img,
            st[set]["boot"]["number"].as_u64().unwrap() as u32,
        );
        let want = (st[set]["priority"].as_u64().unwrap() << 48)
            | (st[set]["tries_left"].as_u64().unwrap() << 52)
            | (u64::from(st[set]["successful"].as_bool().unwrap()) << 56);
        assert_eq!(sg.attributes & OWNED, want, "{step}: set {set} BOOT bits");
    }
    all.push(&st["private"]);
    let sg = sgdisk_info(
        sgdisk,
        img,
        st["private"]["number"].as_u64().unwrap() as u32,
    );
    let ever = u64::from(st["has_boot_ever_succeeded"].as_bool().unwrap()) << 57;
    assert_eq!(sg.attributes & OWNED, ever, "{step}: PRIVATE bit 57");
    for part in all {
        let sg = sgdisk_info(sgdisk, img, part["number"].as_u64().unwrap() as u32);
        assert_eq!(sg.type_guid, part["type_guid"].as_str().unwrap(), "{step}");
        assert_eq!(
            sg.unique_guid,
            part["unique_guid"].as_str().unwrap(),
            "{step}"
        );
        assert_eq!(sg.name, part["label"].as_str().unwrap(), "{step}");
        assert_eq!(sg.first_lba, part["first_lba"].as_u64().unwrap(), "{step}");
        assert_eq!(sg.last_lba, part["last_lba"].as_u64().unwrap(), "{step}");
    }
    let verify = test_tools::run(Command::new(sgdisk).arg("-v").arg(img));
    assert!(
        verify.contains("No problems found"),
        "{step}: sgdisk -v: {verify}"
    );
}

#[test]
fn sgdisk_reads_what_signpost_writes_after_every_verb() {
    let Some(sgdisk) = test_tools::require_tool("sgdisk") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = common::create_image(dir.path(), "disk.img", 100);
    let root = dir.path().join("node");
    let types = test_tools::run(Command::new(&sgdisk).arg("-i").arg("10").arg(&img));
    assert!(
        types.contains(&PartitionType::Data.guid().to_string().to_uppercase()),
        "DATA type: {types}"
    );
    assert_agrees(&sgdisk, &img, &root, "fresh");
    let steps = [
        "boot-select",
        "mark-successful-boot",
        "mark-inactive-valid",
        "upgrade-to-inactive",
        "cancel-upgrade",
        "upgrade-to-inactive",
        "boot-select",
        "mark-successful-boot",
        "rollback-to-inactive",
        "boot-select",
        "clear-inactive",
    ];
    for (i, step) in steps.into_iter().enumerate() {
        ok_verb(step, &img, &root);
        assert_agrees(&sgdisk, &img, &root, &format!("after {step} (step {i})"));
    }
    let st = status_json(&img, &["--sysroot", s(&root)]);
    assert_eq!(st["active"], "A", "rolled back to A");
    assert_eq!(st["B"]["priority"], 0);
    assert_eq!(st["has_boot_ever_succeeded"], true);
}

#[test]
fn signpost_reads_what_sgdisk_writes() {
    let Some(sgdisk) = test_tools::require_tool("sgdisk") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("sgdisk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mut cmd = Command::new(&sgdisk);
    cmd.arg("-o");
    let layout = [
        (PartitionType::Boot, "BOTTLEROCKET-BOOT-A"),
        (PartitionType::Root, "BOTTLEROCKET-ROOT-A"),
        (PartitionType::Hash, "BOTTLEROCKET-HASH-A"),
        (PartitionType::Boot, "BOTTLEROCKET-BOOT-B"),
        (PartitionType::Root, "BOTTLEROCKET-ROOT-B"),
        (PartitionType::Hash, "BOTTLEROCKET-HASH-B"),
        (PartitionType::Private, "BOTTLEROCKET-PRIVATE"),
        (PartitionType::Data, "DATA"),
    ];
    for (i, (kind, label)) in layout.iter().enumerate() {
        let n = i + 1;
        cmd.arg("-n").arg(format!("{n}:0:+4M"));
        cmd.arg("-t").arg(format!("{n}:{}", kind.guid()));
        cmd.arg("-c").arg(format!("{n}:{label}"));
    }
    // A: priority 1, successful. B: priority 2, tries 1 (bits 49 and 52). PRIVATE: bit 57.
    // Also bit 0 (required partition) on BOOT-A, which signpost must preserve.
    for attr in [
        "1:set:48", "1:set:56", "1:set:0", "4:set:49", "4:set:52", "7:set:57",
    ] {
        cmd.arg("-A").arg(attr);
    }
    test_tools::run(cmd.arg(&img));

    let file = std::fs::File::open(&img).unwrap();
    let sd = signpost::SignpostDisk::open(file, "sgdisk.img").unwrap();
    let a = sd.flags(signpost::SetId::A);
    let b = sd.flags(signpost::SetId::B);
    assert_eq!(
        (a.priority.get(), a.tries_left.get(), a.successful),
        (1, 0, true)
    );
    assert_eq!(
        (b.priority.get(), b.tries_left.get(), b.successful),
        (2, 1, false)
    );
    assert!(sd.has_boot_ever_succeeded());
    assert_eq!(sd.next_boot(), Some(signpost::SetId::B));
    let parts = sd.partitions(signpost::SetId::B);
    assert_eq!(
        (parts.boot.number, parts.root.number, parts.hash.number),
        (4, 5, 6)
    );
    assert_eq!(parts.root.label, "BOTTLEROCKET-ROOT-B");
    assert!(parts.reserved.is_none());
    assert_eq!(sd.private_partition().number, 7);
    let sg = sgdisk_info(&sgdisk, &img, 5);
    assert_eq!(parts.root.unique_guid.to_string(), sg.unique_guid);
    assert_eq!(parts.root.first_lba, sg.first_lba);
    drop(sd);

    // A transition through the binary keeps sgdisk's other bits.
    let root = dir.path().join("node");
    ok_verb("boot-select", &img, &root);
    ok_verb("mark-successful-boot", &img, &root);
    ok_verb("clear-inactive", &img, &root);
    let a_bits = sgdisk_info(&sgdisk, &img, 1).attributes;
    assert_eq!(a_bits, 1, "A cleared (inactive), bit 0 kept");
    let b_bits = sgdisk_info(&sgdisk, &img, 4).attributes;
    assert_eq!(
        b_bits,
        (2 << 48) | (1 << 56),
        "B priority 2, tries spent, successful"
    );
    assert_agrees(&sgdisk, &img, &root, "sgdisk-made disk after transitions");
}
