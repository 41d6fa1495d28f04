//! What a user of the `signpost` command sees.
#![allow(clippy::unwrap_used)] // Test helpers: a panic is how a test reports failure.

mod common;

use common::{
    corrupt, create_image, err_line, ok_stdout, ok_verb, run_signpost, s, small_image,
    small_image_args, status_json,
};
use serde_json::Value;
use signpost::PartitionType;
use signpost::gptman::{GPT, GPTPartitionEntry};
use std::fs;
use std::path::Path;

#[test]
fn help_lists_every_verb() {
    let help = ok_stdout(&["--help"]);
    for verb in [
        "status",
        "clear-inactive",
        "mark-inactive-valid",
        "upgrade-to-inactive",
        "cancel-upgrade",
        "rollback-to-inactive",
        "mark-successful-boot",
        "has-boot-ever-succeeded",
        "boot-select",
        "create-disk",
    ] {
        assert!(help.contains(verb), "--help lacks {verb}:\n{help}");
    }
    for flag in ["--disk", "--sysroot", "--active-set"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = run_signpost(&["status", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_signpost(&["status", "--active-set", "C"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected A or B"));
}

#[test]
fn a_fresh_disk_boots_set_a_and_set_b_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let img = create_image(dir.path(), "fresh.img", 128);
    let st = status_json(&img, &["--sysroot", s(dir.path())]);
    assert_eq!(st["schema_version"], 1);
    assert_eq!(st["active"], Value::Null, "no marker, no flag: unknown");
    assert_eq!(st["next_boot"], "A");
    assert_eq!(st["has_boot_ever_succeeded"], false);

    let st = status_json(&img, &["--active-set", "A"]);
    assert_eq!(st["active"], "A");
    assert_eq!(st["active_source"], "--active-set");
    assert_eq!(st["A"]["priority"], 1);
    assert_eq!(st["A"]["successful"], true);
    assert_eq!(st["A"]["bootable"], true);
    assert_eq!(st["B"]["priority"], 0);
    assert_eq!(st["B"]["tries_left"], 0);
    assert_eq!(st["B"]["successful"], false);
    assert_eq!(st["B"]["bootable"], false);
    assert_eq!(st["B"]["root"]["label"], "BOTTLEROCKET-ROOT-B");
    assert_eq!(st["B"]["root"]["number"], 6);
    assert_eq!(st["private"]["number"], 9);
    assert_eq!(st["table"]["primary"]["state"], "good");

    let human = ok_stdout(&["status", "--disk", s(&img), "--active-set", "A"]);
    assert!(human.contains("Set A (active, boots next)"), "{human}");
    assert!(human.contains("BOTTLEROCKET-HASH-B"), "{human}");
}

#[test]
fn boot_select_records_the_booted_set_for_later_verbs() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let root = dir.path().join("node");
    let out = ok_stdout(&[
        "boot-select",
        "--json",
        "--disk",
        s(&img),
        "--sysroot",
        s(&root),
    ]);
    let chosen: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(chosen["set"], "A");
    let marker = fs::read_to_string(root.join("run/booted-set")).unwrap();
    let st = status_json(&img, &["--sysroot", s(&root)]);
    assert_eq!(
        marker.trim(),
        st["A"]["boot"]["unique_guid"].as_str().unwrap()
    );
    assert_eq!(st["active"], "A");
    assert_eq!(st["active_source"], "booted-set marker");

    // A transition finds the active set through the marker.
    assert_eq!(
        ok_stdout(&["has-boot-ever-succeeded", "--disk", s(&img)]).trim(),
        "false"
    );
    ok_verb("mark-successful-boot", &img, &root);
    assert_eq!(
        ok_stdout(&["has-boot-ever-succeeded", "--disk", s(&img)]).trim(),
        "true"
    );
    ok_verb("mark-inactive-valid", &img, &root);
    ok_verb("upgrade-to-inactive", &img, &root);
    let st = status_json(&img, &["--sysroot", s(&root)]);
    assert_eq!(st["next_boot"], "B");
    assert_eq!(
        (st["B"]["priority"].as_u64(), st["B"]["tries_left"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(st["A"]["priority"], 1);

    // B's one try is spent by the bootloader; without a mark the next choice is A.
    let out = ok_verb("boot-select", &img, &root);
    assert!(out.starts_with("Booting set B"), "{out}");
    let st = status_json(&img, &["--sysroot", s(&root)]);
    assert_eq!(st["active"], "B");
    assert_eq!(st["next_boot"], "A");
}

#[test]
fn the_kernel_command_line_names_the_active_set() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let st = status_json(&img, &["--sysroot", s(dir.path())]);
    let guid = st["B"]["root"]["unique_guid"]
        .as_str()
        .unwrap()
        .to_uppercase();
    fs::create_dir_all(dir.path().join("proc")).unwrap();
    fs::write(
        dir.path().join("proc/cmdline"),
        format!("console=ttyS0 root=PARTUUID={guid} ro\n"),
    )
    .unwrap();
    let st = status_json(&img, &["--sysroot", s(dir.path())]);
    assert_eq!(st["active"], "B");
    assert_eq!(st["active_source"], "kernel command line");
}

#[test]
fn a_transition_without_an_active_set_says_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let before = fs::read(&img).unwrap();
    let err = err_line(&[
        "clear-inactive",
        "--disk",
        s(&img),
        "--sysroot",
        s(dir.path()),
    ]);
    assert!(err.contains("Failed to find the active set on"), "{err}");
    for tried in ["--active-set", "booted-set", "proc/cmdline", "root device"] {
        assert!(err.contains(tried), "{err}");
    }
    assert_eq!(fs::read(&img).unwrap(), before);
}

#[test]
fn a_refused_verb_exits_1_with_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let before = fs::read(&img).unwrap();
    let err = err_line(&[
        "upgrade-to-inactive",
        "--disk",
        s(&img),
        "--active-set",
        "A",
    ]);
    assert_eq!(
        err,
        format!(
            "signpost: Cannot upgrade to inactive set B on '{}': set B was not marked valid (priority 0, tries 0, successful false)",
            img.display()
        )
    );
    let err = err_line(&[
        "rollback-to-inactive",
        "--disk",
        s(&img),
        "--active-set",
        "A",
    ]);
    assert!(err.contains("set B is not bootable"), "{err}");
    // B is not successful: nothing may be done to A from it.
    let err = err_line(&["clear-inactive", "--disk", s(&img), "--active-set", "B"]);
    assert!(
        err.contains("active set B has not booted successfully"),
        "{err}"
    );
    assert_eq!(
        fs::read(&img).unwrap(),
        before,
        "a refused verb wrote to the image"
    );
}

#[test]
fn a_disk_without_a_gpt_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("blank.img");
    fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
    let err = err_line(&["status", "--disk", s(&img)]);
    assert!(err.contains(&format!("'{}'", img.display())), "{err}");
    assert!(err.contains("no GPT found"), "{err}");
    let err = err_line(&["status", "--disk", s(&dir.path().join("missing.img"))]);
    assert!(err.contains("Failed to open disk"), "{err}");
}

#[test]
fn a_corrupt_primary_is_repaired_from_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let good = fs::read(&img).unwrap();
    corrupt(&img, 512 + 24); // inside the primary header
    let st = status_json(&img, &["--active-set", "A"]);
    assert_eq!(st["table"]["primary"]["state"], "invalid");
    assert_eq!(st["table"]["backup"]["state"], "good");
    assert_eq!(st["table"]["repaired"], true);
    assert_eq!(st["A"]["bootable"], true);
    assert_eq!(
        fs::read(&img).unwrap(),
        good,
        "the primary was rewritten as it was"
    );
    let st = status_json(&img, &[]);
    assert_eq!(st["table"]["repaired"], false);

    corrupt(&img, 3 * 512 + 40); // inside the primary entry array
    let human = ok_stdout(&["status", "--disk", s(&img)]);
    assert!(human.contains("primary invalid"), "{human}");
    assert!(human.contains("repaired"), "{human}");
    assert_eq!(fs::read(&img).unwrap(), good);
}

#[test]
fn a_corrupt_primary_and_backup_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let len = fs::metadata(&img).unwrap().len();
    corrupt(&img, 512 + 24);
    corrupt(&img, len - 512 + 24);
    let err = err_line(&["status", "--disk", s(&img)]);
    assert!(
        err.starts_with(&format!(
            "signpost: corrupt primary and backup GPT on '{}'",
            img.display()
        )),
        "{err}"
    );
}

/// Writes a GPT with only the given partitions (type, label), 1 MiB each, with gptman.
fn write_partial_disk(img: &Path, parts: &[(PartitionType, &str)]) {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(img)
        .unwrap();
    f.set_len(32 << 20).unwrap();
    let mut gpt = GPT::new_from(&mut f, 512, [9; 16]).unwrap();
    for (i, (kind, label)) in parts.iter().enumerate() {
        let n = i as u32 + 1;
        gpt[n] = GPTPartitionEntry {
            partition_type_guid: kind.guid().to_bytes_le(),
            unique_partition_guid: [n as u8; 16],
            starting_lba: 2048 * u64::from(n),
            ending_lba: 2048 * u64::from(n) + 2047,
            attribute_bits: 0,
            partition_name: (*label).into(),
        };
    }
    gpt.write_into(&mut f).unwrap();
}

#[test]
fn a_disk_with_one_set_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("one-set.img");
    write_partial_disk(
        &img,
        &[
            (PartitionType::Boot, "BOTTLEROCKET-BOOT-A"),
            (PartitionType::Root, "BOTTLEROCKET-ROOT-A"),
            (PartitionType::Hash, "BOTTLEROCKET-HASH-A"),
            (PartitionType::Private, "BOTTLEROCKET-PRIVATE"),
        ],
    );
    let err = err_line(&["status", "--disk", s(&img)]);
    assert_eq!(
        err,
        format!(
            "signpost: Failed to find the partition sets on '{}': set B is missing its BOOT, ROOT, HASH partitions (the second of each type in table order)",
            img.display()
        )
    );

    write_partial_disk(
        &img,
        &[
            (PartitionType::Boot, "BOTTLEROCKET-BOOT-A"),
            (PartitionType::Hash, "BOTTLEROCKET-HASH-A"),
            (PartitionType::Root, "BOTTLEROCKET-ROOT-A"),
            (PartitionType::Boot, "BOTTLEROCKET-BOOT-B"),
            (PartitionType::Root, "BOTTLEROCKET-ROOT-B"),
            (PartitionType::Hash, "BOTTLEROCKET-HASH-B"),
        ],
    );
    let err = err_line(&["status", "--disk", s(&img)]);
    assert!(
        err.contains("set A: ROOT is partition 3, expected partition 2 (BOOT+1)"),
        "{err}"
    );
    assert!(err.contains("no PRIVATE partition"), "{err}");
    assert!(!err.contains("set B"), "{err}");
}

#[test]
fn create_disk_refuses_a_disk_too_small_and_an_existing_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("small.img");
    let err = err_line(&["create-disk", "--disk", s(&img), "--size-mib", "10"]);
    assert!(err.contains("disk too small"), "{err}");
    assert!(err.contains("needs 89 MiB"), "{err}");
    assert!(err.contains("10485760 bytes"), "{err}");
    assert!(!img.exists(), "a failed create-disk leaves no image behind");

    let img = small_image(dir.path());
    let err = err_line(&small_image_args(&img));
    assert!(err.contains("already exists"), "{err}");
    let out = run_signpost(&["create-disk"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "create-disk without --disk is a usage error"
    );
}
