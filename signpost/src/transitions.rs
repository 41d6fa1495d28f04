//! The verbs of design.md section 4: preconditions, effects, and the bootloader's choice.
//!
//! A refused verb returns [`Error::Refused`](crate::Error::Refused) and writes nothing.

use crate::attrs::BootFlags;
use crate::attrs::{Priority, Tries};
use crate::disk::Disk;
use crate::error::{self, Result};
use crate::sets::SetId;
use crate::signpost_disk::{SignpostDisk, set_ever_succeeded, update_flags};

impl<D: Disk> SignpostDisk<D> {
    fn refuse<T>(&self, action: String, reason: String) -> Result<T> {
        error::RefusedSnafu {
            action,
            disk: self.name.clone(),
            reason,
        }
        .fail()
    }

    /// The active set, or a refusal naming `action` when it is not known.
    fn require_active(&self, action: &str) -> Result<SetId> {
        match self.active {
            Some(set) => Ok(set),
            None => self.refuse(
                action.to_string(),
                "the active set is not known (pass --active-set, or boot through boot-select)"
                    .to_string(),
            ),
        }
    }

    /// Refuses `action` unless the active set has booted successfully.
    fn require_active_successful(&self, active: SetId, action: String) -> Result<()> {
        let flags = self.flags(active);
        if flags.successful {
            return Ok(());
        }
        self.refuse(
            action,
            format!("active set {active} has not booted successfully ({flags})"),
        )
    }

    /// `clear-inactive`: the inactive set gets priority 0, tries 0, not successful.
    /// Precondition: the active set booted successfully.
    pub fn clear_inactive(&mut self) -> Result<()> {
        let active = self.require_active("clear the inactive set")?;
        let inactive = active.other();
        self.require_active_successful(active, format!("clear inactive set {inactive}"))?;
        self.commit(|table, sets| update_flags(table, sets, inactive, |f| *f = BootFlags::EMPTY))
    }

    /// `mark-inactive-valid`: the inactive set gets one try.
    /// Precondition: the active set booted successfully.
    pub fn mark_inactive_valid(&mut self) -> Result<()> {
        let active = self.require_active("mark the inactive set valid")?;
        let inactive = active.other();
        self.require_active_successful(active, format!("mark inactive set {inactive} valid"))?;
        self.commit(|table, sets| {
            update_flags(table, sets, inactive, |f| f.tries_left = Tries::ONE)
        })
    }

    /// `upgrade-to-inactive`: the inactive set gets priority 2 (not successful), the active
    /// priority 1. Preconditions: the active set booted successfully; the inactive set has
    /// priority 0, is not successful and has tries left (it was marked valid).
    pub fn upgrade_to_inactive(&mut self) -> Result<()> {
        let active = self.require_active("upgrade to the inactive set")?;
        let inactive = active.other();
        let action = format!("upgrade to inactive set {inactive}");
        self.require_active_successful(active, action.clone())?;
        let flags = self.flags(inactive);
        if flags.successful {
            return self.refuse(
                action,
                format!("set {inactive} holds a previous successful boot ({flags}); clear it and write a new image first"),
            );
        }
        if !flags.priority.is_zero() {
            return self.refuse(
                action,
                format!("set {inactive} already has a boot priority ({flags}); the upgrade is already applied"),
            );
        }
        if flags.tries_left.is_zero() {
            return self.refuse(
                action,
                format!("set {inactive} was not marked valid ({flags})"),
            );
        }
        self.commit(|table, sets| {
            update_flags(table, sets, inactive, |f| {
                f.priority = Priority::TWO;
                f.successful = false;
            });
            update_flags(table, sets, active, |f| f.priority = Priority::ONE);
        })
    }

    /// `cancel-upgrade`: the inactive set gets priority 0, the active priority 2.
    /// Precondition: the active set booted successfully.
    pub fn cancel_upgrade(&mut self) -> Result<()> {
        let active = self.require_active("cancel the upgrade")?;
        let inactive = active.other();
        self.require_active_successful(active, format!("cancel the upgrade to set {inactive}"))?;
        self.commit(|table, sets| {
            update_flags(table, sets, inactive, |f| f.priority = Priority::ZERO);
            update_flags(table, sets, active, |f| f.priority = Priority::TWO);
        })
    }

    /// `rollback-to-inactive`: the inactive set gets priority 2, the active priority 1.
    /// Precondition: the inactive set is bootable ((priority > 0 and tries left) or successful).
    pub fn rollback_to_inactive(&mut self) -> Result<()> {
        let active = self.require_active("roll back to the inactive set")?;
        let inactive = active.other();
        let flags = self.flags(inactive);
        let bootable =
            (!flags.priority.is_zero() && !flags.tries_left.is_zero()) || flags.successful;
        if !bootable {
            return self.refuse(
                format!("roll back to inactive set {inactive}"),
                format!("set {inactive} is not bootable ({flags})"),
            );
        }
        self.commit(|table, sets| {
            update_flags(table, sets, inactive, |f| f.priority = Priority::TWO);
            update_flags(table, sets, active, |f| f.priority = Priority::ONE);
        })
    }

    /// `mark-successful-boot`: the active set is marked successful and PRIVATE bit 57 is set.
    pub fn mark_successful_boot(&mut self) -> Result<()> {
        let active = self.require_active("mark the boot successful")?;
        self.commit(|table, sets| {
            update_flags(table, sets, active, |f| f.successful = true);
            set_ever_succeeded(table, sets);
        })
    }

    /// The bootloader's choice: picks a set (gptprio), spends one of its tries if it has any and
    /// writes the table **before** returning, then records the set as active.
    pub fn boot_select(&mut self) -> Result<SetId> {
        let Some(chosen) = self.next_boot() else {
            let states = SetId::ALL
                .map(|set| format!("set {set}: {}", self.flags(set)))
                .join("; ");
            return error::NoBootableSetSnafu {
                disk: self.name.clone(),
                states,
            }
            .fail();
        };
        if !self.flags(chosen).tries_left.is_zero() {
            self.commit(|table, sets| {
                update_flags(table, sets, chosen, |f| {
                    f.tries_left = f.tries_left.decremented()
                });
            })?;
        }
        self.active = Some(chosen);
        Ok(chosen)
    }
}
