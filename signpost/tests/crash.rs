//! Crash safety of every table change (design.md section 4): after any crash the disk reads as
//! the old or the new table, and a set is bootable.
#![allow(clippy::unwrap_used)] // Test helpers: a panic is how a test reports failure.

mod common;

use common::{Recorder, check_crashes, fresh_mem_disk, record};
use signpost::{MemDisk, SetId, SignpostDisk};

const RANDOM_CRASHES: usize = 1000;

/// Opens `disk` with `active`, runs `steps`, and returns the disk.
fn prepare(
    disk: MemDisk,
    active: SetId,
    steps: impl FnOnce(&mut SignpostDisk<MemDisk>) -> signpost::Result<()>,
) -> MemDisk {
    let mut sd = SignpostDisk::open(disk, "prep")
        .unwrap()
        .with_active(active);
    steps(&mut sd).unwrap();
    sd.into_inner()
}

/// A booted, confirmed set A with set B written and marked valid.
fn a_good_b_valid() -> MemDisk {
    prepare(fresh_mem_disk(), SetId::A, |sd| {
        sd.mark_successful_boot()?;
        sd.mark_inactive_valid()
    })
}

/// As above, with the upgrade to B applied.
fn upgraded_to_b() -> MemDisk {
    prepare(a_good_b_valid(), SetId::A, |sd| sd.upgrade_to_inactive())
}

/// As above, with B chosen by boot-select and not yet confirmed.
fn b_booted() -> MemDisk {
    let mut sd = SignpostDisk::open(upgraded_to_b(), "prep").unwrap();
    assert_eq!(sd.boot_select().unwrap(), SetId::B);
    sd.into_inner()
}

/// B booted and confirmed; A is the fallback.
fn b_good() -> MemDisk {
    prepare(b_booted(), SetId::B, |sd| sd.mark_successful_boot())
}

/// Records `change` on `old` (opened with `active`), then replays every crash state of it
/// (random ones from `seed`): each must read as the old or the new table with a bootable set.
fn assert_survives_any_crash(
    name: &str,
    old: &MemDisk,
    active: Option<SetId>,
    seed: u64,
    change: impl FnOnce(&mut SignpostDisk<Recorder<MemDisk>>) -> signpost::Result<()>,
) {
    let events = record(old, active, false, change);
    let report = check_crashes(old, &events, seed, RANDOM_CRASHES);
    eprintln!(
        "{name}: tried {} crash states, {} bad",
        report.tried,
        report.failures.len()
    );
    assert!(
        report.failures.is_empty(),
        "{name}: {} of {} crash states are bad, first: {}",
        report.failures.len(),
        report.tried,
        report.failures[0]
    );
    assert!(
        report.tried > RANDOM_CRASHES,
        "{name}: too few states tried"
    );
}

#[test]
fn upgrade_to_inactive_survives_any_crash() {
    let old = a_good_b_valid();
    assert_survives_any_crash("upgrade-to-inactive", &old, Some(SetId::A), 1, |sd| {
        sd.upgrade_to_inactive()
    });
}

#[test]
fn boot_select_decrement_survives_any_crash() {
    let old = upgraded_to_b();
    assert_survives_any_crash("boot-select", &old, None, 2, |sd| {
        sd.boot_select().map(drop)
    });
}

#[test]
fn mark_successful_boot_survives_any_crash() {
    let old = b_booted();
    assert_survives_any_crash("mark-successful-boot", &old, Some(SetId::B), 3, |sd| {
        sd.mark_successful_boot()
    });
}

#[test]
fn clear_inactive_survives_any_crash() {
    let old = b_good();
    assert_survives_any_crash("clear-inactive", &old, Some(SetId::B), 4, |sd| {
        sd.clear_inactive()
    });
}

#[test]
fn rollback_to_inactive_survives_any_crash() {
    let old = b_good();
    assert_survives_any_crash("rollback-to-inactive", &old, Some(SetId::B), 5, |sd| {
        sd.rollback_to_inactive()
    });
}

#[test]
fn cancel_upgrade_survives_any_crash() {
    let old = upgraded_to_b();
    assert_survives_any_crash("cancel-upgrade", &old, Some(SetId::A), 6, |sd| {
        sd.cancel_upgrade()
    });
}

#[test]
fn writes_go_entries_then_header_primary_first_with_a_sync_after_each_copy() {
    use common::Event;
    let old = a_good_b_valid();
    let events = record(&old, Some(SetId::A), false, |sd| sd.upgrade_to_inactive());
    let last_lba = old.len() / 512 - 1;
    let shape: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Write { offset, bytes } => format!("w{}+{}", offset / 512, bytes.len() / 512),
            Event::Sync => "sync".to_string(),
        })
        .collect();
    let expected = [
        "w2+32".to_string(),
        "w1+1".to_string(),
        "sync".to_string(),
        format!("w{}+32", last_lba - 32),
        format!("w{last_lba}+1"),
        "sync".to_string(),
    ];
    assert_eq!(shape, expected);
}

/// The checker must notice when the sync between the copies is missing; otherwise it proves
/// nothing.
#[test]
fn without_the_sync_between_copies_the_checker_finds_a_bad_state() {
    let old = a_good_b_valid();
    let events = record(&old, Some(SetId::A), true, |sd| sd.upgrade_to_inactive());
    let report = check_crashes(&old, &events, 7, RANDOM_CRASHES);
    eprintln!(
        "no sync between copies: tried {} crash states, {} bad (expected some), e.g. {:?}",
        report.tried,
        report.failures.len(),
        report.failures.first()
    );
    assert!(!report.failures.is_empty());
}
