//! The bootloader's choice of a set (gptprio), as a pure function.

use crate::attrs::BootFlags;
use crate::sets::SetId;

/// Picks the set to boot from BOOT entries given in table order.
///
/// A candidate has priority > 0 and (tries left > 0 or successful); the highest priority wins and
/// ties go to the earlier entry. `None` means nothing is bootable, which is a hard error for the
/// bootloader.
pub fn choose(boot_entries: &[(SetId, BootFlags)]) -> Option<SetId> {
    let mut best: Option<(SetId, BootFlags)> = None;
    for (set, flags) in boot_entries {
        if !flags.is_bootable() {
            continue;
        }
        if best.is_none_or(|(_, b)| flags.priority > b.priority) {
            best = Some((*set, *flags));
        }
    }
    best.map(|(set, _)| set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{Priority, Tries};

    fn flags(priority: u8, tries: u8, successful: bool) -> BootFlags {
        BootFlags {
            priority: Priority::new(priority).unwrap(),
            tries_left: Tries::new(tries).unwrap(),
            successful,
        }
    }

    #[test]
    fn highest_priority_wins_and_ties_go_to_the_first() {
        let a_good = flags(1, 0, true);
        let b_try = flags(2, 1, false);
        assert_eq!(
            choose(&[(SetId::A, a_good), (SetId::B, b_try)]),
            Some(SetId::B)
        );
        let b_spent = flags(2, 0, false);
        assert_eq!(
            choose(&[(SetId::A, a_good), (SetId::B, b_spent)]),
            Some(SetId::A)
        );
        let b_tie = flags(1, 0, true);
        assert_eq!(
            choose(&[(SetId::A, a_good), (SetId::B, b_tie)]),
            Some(SetId::A)
        );
        assert_eq!(
            choose(&[(SetId::A, b_spent), (SetId::B, flags(0, 3, true))]),
            None
        );
    }
}
