//! Random sequences of verbs (any verb at any time, as an operator might type them) and boot
//! outcomes, checked against a reference model of design.md section 4.
#![allow(clippy::unwrap_used)] // Test helpers: a panic is how a test reports failure.

mod common;

use common::fresh_mem_disk;
use proptest::prelude::*;
use signpost::{BootFlags, MemDisk, SetId, SignpostDisk};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    ClearInactive,
    MarkInactiveValid,
    UpgradeToInactive,
    CancelUpgrade,
    RollbackToInactive,
    MarkSuccessfulBoot,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Verb(Verb),
    /// boot-select, then mark-successful-boot.
    BootOk,
    /// boot-select, then a reset without marking.
    BootFails,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Verb(Verb::ClearInactive)),
        1 => Just(Op::Verb(Verb::MarkInactiveValid)),
        1 => Just(Op::Verb(Verb::UpgradeToInactive)),
        1 => Just(Op::Verb(Verb::CancelUpgrade)),
        1 => Just(Op::Verb(Verb::RollbackToInactive)),
        1 => Just(Op::Verb(Verb::MarkSuccessfulBoot)),
        2 => Just(Op::BootOk),
        2 => Just(Op::BootFails),
    ]
}

/// The reference: (priority, tries, successful) per set, written straight from the table in
/// design.md section 4. `None` = refused.
type Model = [(u8, u8, bool); 2];

fn idx(set: SetId) -> usize {
    match set {
        SetId::A => 0,
        SetId::B => 1,
    }
}

fn model_apply(m: Model, verb: Verb, active: SetId) -> Option<Model> {
    let (a, i) = (idx(active), idx(active.other()));
    let mut n = m;
    let active_ok = m[a].2;
    match verb {
        Verb::ClearInactive if active_ok => n[i] = (0, 0, false),
        Verb::MarkInactiveValid if active_ok => n[i].1 = 1,
        Verb::UpgradeToInactive if active_ok && m[i].0 == 0 && !m[i].2 && m[i].1 > 0 => {
            n[i].0 = 2;
            n[i].2 = false;
            n[a].0 = 1;
        }
        Verb::CancelUpgrade if active_ok => {
            n[i].0 = 0;
            n[a].0 = 2;
        }
        Verb::RollbackToInactive if (m[i].0 > 0 && m[i].1 > 0) || m[i].2 => {
            n[i].0 = 2;
            n[a].0 = 1;
        }
        Verb::MarkSuccessfulBoot => n[a].2 = true,
        _ => return None,
    }
    Some(n)
}

fn flags_of(disk: &MemDisk) -> Model {
    let sd = SignpostDisk::open(disk.clone(), "model").unwrap();
    SetId::ALL.map(|set| {
        let BootFlags {
            priority,
            tries_left,
            successful,
        } = sd.flags(set);
        (priority.get(), tries_left.get(), successful)
    })
}

fn run_verb(disk: &mut MemDisk, verb: Verb, active: SetId) -> signpost::Result<()> {
    let mut sd = SignpostDisk::open(disk, "prop")?.with_active(active);
    match verb {
        Verb::ClearInactive => sd.clear_inactive(),
        Verb::MarkInactiveValid => sd.mark_inactive_valid(),
        Verb::UpgradeToInactive => sd.upgrade_to_inactive(),
        Verb::CancelUpgrade => sd.cancel_upgrade(),
        Verb::RollbackToInactive => sd.rollback_to_inactive(),
        Verb::MarkSuccessfulBoot => sd.mark_successful_boot(),
    }
}

fn boot(disk: &mut MemDisk) -> SetId {
    let mut sd = SignpostDisk::open(disk, "prop").unwrap();
    sd.boot_select().expect("a bootable set always exists")
}

fn next_boot(disk: &MemDisk) -> Option<SetId> {
    SignpostDisk::open(disk.clone(), "prop")
        .unwrap()
        .next_boot()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn any_sequence_keeps_a_bootable_set_and_falls_back_after_a_failed_try(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let mut disk = fresh_mem_disk();
        // First boot of a fresh disk: A, confirmed.
        let mut active = boot(&mut disk);
        prop_assert_eq!(active, SetId::A);
        run_verb(&mut disk, Verb::MarkSuccessfulBoot, active).unwrap();
        let mut last_good = active;

        for op in ops {
            match op {
                Op::Verb(verb) => {
                    let before = disk.clone();
                    let expected = model_apply(flags_of(&disk), verb, active);
                    let result = run_verb(&mut disk, verb, active);
                    match (expected, &result) {
                        (Some(model), Ok(())) => prop_assert_eq!(flags_of(&disk), model),
                        (None, Err(e)) => {
                            let msg = e.to_string();
                            prop_assert!(msg.starts_with("Cannot "), "{}", msg);
                            prop_assert!(msg.contains("'prop'"), "{}", msg);
                            prop_assert!(!msg.contains('\n'));
                            // Refused: not one byte written.
                            prop_assert!(disk == before, "a refused {:?} wrote to the disk", verb);
                        }
                        (expected, result) => prop_assert!(
                            false, "{:?} from {}: model {:?}, signpost {:?}", verb, active, expected, result
                        ),
                    }
                    if verb == Verb::MarkSuccessfulBoot {
                        last_good = active;
                    }
                }
                Op::BootOk => {
                    active = boot(&mut disk);
                    run_verb(&mut disk, Verb::MarkSuccessfulBoot, active).unwrap();
                    last_good = active;
                }
                Op::BootFails => {
                    let was_confirmed = next_boot(&disk).map(|s| flags_of(&disk)[idx(s)].2);
                    active = boot(&mut disk);
                    match was_confirmed {
                        // The try is spent and not marked: the reset boots the last good set.
                        Some(false) => prop_assert_eq!(next_boot(&disk), Some(last_good)),
                        // A set marked before stays good through a reset (its flag stays): it
                        // is the one the next failed try falls back to, even if the set that
                        // was good before it has been cleared since.
                        _ => last_good = active,
                    }
                }
            }
            // A successful set has existed since the first boot: something is always bootable.
            prop_assert!(next_boot(&disk).is_some(), "no bootable set: {:?}", flags_of(&disk));
            let sd = SignpostDisk::open(disk.clone(), "prop").unwrap();
            prop_assert!(sd.has_boot_ever_succeeded());
        }
    }
}
