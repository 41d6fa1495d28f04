//! The GPT attribute bits signpost uses, and the only place that knows where they sit.
//!
//! On each BOOT entry: priority in bits 48–51, tries left in bits 52–55, successful in bit 56.
//! On the PRIVATE entry: bit 57, "a boot has ever succeeded on this disk". Every other bit of the
//! 64-bit attribute field is preserved by every change.

use serde::Serialize;
use std::fmt;

const PRIORITY_SHIFT: u32 = 48;
const TRIES_SHIFT: u32 = 52;
const SUCCESSFUL_BIT: u32 = 56;
const EVER_SUCCEEDED_BIT: u32 = 57;
const NIBBLE: u64 = 0xf;

/// The bits (48–57) that signpost owns; all others are preserved.
pub const OWNED_BITS_MASK: u64 = 0x3ff << PRIORITY_SHIFT;

/// A boot priority, 0 (never boot) to 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Priority(u8);

/// The number of boot attempts left, 0 to 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Tries(u8);

macro_rules! nibble_newtype {
    ($name:ident) => {
        impl $name {
            /// The largest value the 4-bit field holds.
            pub const MAX: u8 = 15;

            /// Returns the value if it fits the 4-bit field (0..=15).
            pub fn new(value: u8) -> Option<Self> {
                (value <= Self::MAX).then_some(Self(value))
            }

            /// The value, 0..=15.
            pub fn get(self) -> u8 {
                self.0
            }

            /// Whether the value is zero.
            pub fn is_zero(self) -> bool {
                self.0 == 0
            }

            fn from_nibble(bits: u64, shift: u32) -> Self {
                // Masked to 4 bits, so the cast cannot truncate.
                Self(((bits >> shift) & NIBBLE) as u8)
            }

            fn into_nibble(self, bits: u64, shift: u32) -> u64 {
                (bits & !(NIBBLE << shift)) | (u64::from(self.0) << shift)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

nibble_newtype!(Priority);
nibble_newtype!(Tries);

impl Priority {
    /// Priority 0: the bootloader never picks this set.
    pub const ZERO: Priority = Priority(0);
    /// Priority 1: the fallback set.
    pub const ONE: Priority = Priority(1);
    /// Priority 2: the preferred set.
    pub const TWO: Priority = Priority(2);
}

impl Tries {
    /// No tries left.
    pub const ZERO: Tries = Tries(0);
    /// One try left: a set marked valid.
    pub const ONE: Tries = Tries(1);

    /// One fewer try, saturating at zero.
    pub fn decremented(self) -> Tries {
        Tries(self.0.saturating_sub(1))
    }
}

/// The gptprio fields of a BOOT partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct BootFlags {
    /// Bits 48–51.
    pub priority: Priority,
    /// Bits 52–55.
    pub tries_left: Tries,
    /// Bit 56.
    pub successful: bool,
}

impl BootFlags {
    /// All zero: never booted, never bootable.
    pub const EMPTY: BootFlags = BootFlags {
        priority: Priority::ZERO,
        tries_left: Tries::ZERO,
        successful: false,
    };

    /// Reads the fields from a 64-bit attribute field.
    pub fn from_bits(bits: u64) -> BootFlags {
        BootFlags {
            priority: Priority::from_nibble(bits, PRIORITY_SHIFT),
            tries_left: Tries::from_nibble(bits, TRIES_SHIFT),
            successful: bits & (1 << SUCCESSFUL_BIT) != 0,
        }
    }

    /// Returns `bits` with these fields written into bits 48–56 and every other bit kept.
    pub fn apply_to(self, bits: u64) -> u64 {
        let bits = self.priority.into_nibble(bits, PRIORITY_SHIFT);
        let bits = self.tries_left.into_nibble(bits, TRIES_SHIFT);
        set_bit(bits, SUCCESSFUL_BIT, self.successful)
    }

    /// Whether the bootloader may pick this entry: priority > 0 and (tries left or successful).
    pub fn is_bootable(self) -> bool {
        !self.priority.is_zero() && (!self.tries_left.is_zero() || self.successful)
    }
}

impl fmt::Display for BootFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "priority {}, tries {}, successful {}",
            self.priority, self.tries_left, self.successful
        )
    }
}

/// Whether bit 57 ("a boot has ever succeeded") is set in a PRIVATE entry's attributes.
pub fn ever_succeeded(bits: u64) -> bool {
    bits & (1 << EVER_SUCCEEDED_BIT) != 0
}

/// Returns `bits` with bit 57 ("a boot has ever succeeded") set to `value`, other bits kept.
pub fn with_ever_succeeded(bits: u64, value: bool) -> u64 {
    set_bit(bits, EVER_SUCCEEDED_BIT, value)
}

fn set_bit(bits: u64, bit: u32, value: bool) -> u64 {
    if value {
        bits | (1 << bit)
    } else {
        bits & !(1 << bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_match_the_bit_positions() {
        // Priority 1, successful: what sgdisk shows as 0101000000000000.
        let flags = BootFlags {
            priority: Priority::ONE,
            tries_left: Tries::ZERO,
            successful: true,
        };
        assert_eq!(flags.apply_to(0), 0x0101_0000_0000_0000);
        let flags = BootFlags {
            priority: Priority::TWO,
            tries_left: Tries::ONE,
            successful: false,
        };
        assert_eq!(flags.apply_to(0), 0x0012_0000_0000_0000);
        assert_eq!(with_ever_succeeded(0, true), 0x0200_0000_0000_0000);
        assert_eq!(OWNED_BITS_MASK, 0x03ff_0000_0000_0000);
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(Priority::new(16).is_none());
        assert!(Tries::new(255).is_none());
        assert_eq!(Tries::new(15).map(Tries::get), Some(15));
        assert_eq!(Tries::ZERO.decremented(), Tries::ZERO);
    }

    #[test]
    fn bootable_needs_priority_and_tries_or_success() {
        let mut flags = BootFlags::EMPTY;
        assert!(!flags.is_bootable());
        flags.priority = Priority::TWO;
        assert!(!flags.is_bootable());
        flags.tries_left = Tries::ONE;
        assert!(flags.is_bootable());
        flags.tries_left = Tries::ZERO;
        flags.successful = true;
        assert!(flags.is_bootable());
        flags.priority = Priority::ZERO;
        assert!(!flags.is_bootable());
    }

    proptest! {
        #[test]
        fn round_trips_and_preserves_other_bits(
            bits in any::<u64>(), prio in 0u8..=15, tries in 0u8..=15, ok in any::<bool>(), ever in any::<bool>()
        ) {
            let flags = BootFlags {
                priority: Priority::new(prio).unwrap(),
                tries_left: Tries::new(tries).unwrap(),
                successful: ok,
            };
            let written = flags.apply_to(bits);
            prop_assert_eq!(BootFlags::from_bits(written), flags);
            prop_assert_eq!(written & !(0x1ff << 48), bits & !(0x1ff << 48));
            let private = with_ever_succeeded(bits, ever);
            prop_assert_eq!(ever_succeeded(private), ever);
            prop_assert_eq!(private & !(1 << 57), bits & !(1 << 57));
        }
    }
}
