//! The state follows the disk. [`derive()`] combines the last status the server knew (from memory,
//! or from `run/update-status.json` after a restart) with what signpost says now:
//!
//! 1. The booted image differs from the status's `active_partition` (the node rebooted into
//!    another image since): the old status's choice is stale; start fresh (Idle, nothing
//!    chosen), keeping `most_recent_command`.
//! 2. An update is chosen and the inactive set holds another image (e.g. `updog update-image
//!    --image` run by hand) → **Available**: Staged and Ready only ever describe the chosen
//!    update; `staging_partition` says what the set holds and whether it boots next.
//! 3. The inactive set is the bootloader's next choice → **Ready**.
//! 4. Else it is valid with a try and priority 0, not successful → **Staged**.
//! 5. Else → **Available** if an update is chosen, **Idle** if not; no staging partition.
//!
//! `staging_partition` names the image read from the inactive ROOT filesystem when it can be
//! read, else the one the status recorded, else the chosen update. A command that was running
//! when the server died (`running_command` in the file) is recorded as that command's result:
//! `Success` if the disk shows its outcome, else `Failed` ("interrupted").

use crate::disk::{DiskFacts, Inactive};
use crate::status::{StagedImage, UpdateCommand, UpdateState, UpdateStatus};

/// The status that matches the disk.
pub fn derive(previous: Option<UpdateStatus>, facts: &DiskFacts) -> UpdateStatus {
    let mut status = match previous {
        Some(previous)
            if previous
                .active_partition
                .as_ref()
                .is_none_or(|p| p.image == facts.active) =>
        {
            previous
        }
        Some(previous) => {
            let mut fresh = UpdateStatus::new(None);
            fresh.most_recent_command = previous.most_recent_command;
            fresh
        }
        None => UpdateStatus::new(None),
    };
    // The image in the inactive set when it is staged or applied.
    let held = match facts.inactive {
        Inactive::Nothing => None,
        Inactive::Staged | Inactive::Applied => facts
            .inactive_image
            .clone()
            .or_else(|| status.staging_partition.as_ref().map(|s| s.image.clone()))
            .or_else(|| status.chosen_update.clone()),
    };
    let holds_another = matches!(
        (&status.chosen_update, &held),
        (Some(chosen), Some(held)) if chosen != held
    );
    let state = match facts.inactive {
        _ if holds_another => UpdateState::Available,
        Inactive::Applied => UpdateState::Ready,
        Inactive::Staged => UpdateState::Staged,
        Inactive::Nothing if status.chosen_update.is_some() => UpdateState::Available,
        Inactive::Nothing => UpdateState::Idle,
    };
    if let Some(running) = status.running_command.take() {
        let done = match running.cmd_type {
            UpdateCommand::Refresh => false,
            UpdateCommand::Prepare => state == UpdateState::Staged,
            UpdateCommand::Activate => state == UpdateState::Ready,
            UpdateCommand::Deactivate => state == UpdateState::Staged,
        };
        let result = if done {
            Ok(())
        } else {
            Err((
                1,
                format!(
                    "Failed to finish {}: interrupted (the update API stopped while it ran)",
                    running.cmd_type
                ),
            ))
        };
        status.record(running.cmd_type, result);
    }
    status.progress = None;
    let next_is_inactive = facts.inactive == Inactive::Applied;
    status.active_partition = Some(StagedImage {
        image: facts.active.clone(),
        next_to_boot: !next_is_inactive,
    });
    status.staging_partition = held.map(|image| StagedImage {
        image,
        next_to_boot: next_is_inactive,
    });
    status.update_state = state;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{CommandStatus, RunningCommand, UpdateImage};

    fn image(version: &str) -> UpdateImage {
        UpdateImage {
            arch: "x86_64".into(),
            version: version.parse().unwrap(),
            variant: "demo".into(),
        }
    }

    fn facts(inactive: Inactive) -> DiskFacts {
        DiskFacts {
            active: image("1.0.0"),
            inactive,
            inactive_image: match inactive {
                Inactive::Nothing => None,
                _ => Some(image("1.1.0")),
            },
        }
    }

    fn with_state(state: UpdateState, chosen: bool) -> UpdateStatus {
        let mut s = UpdateStatus::new(Some(StagedImage {
            image: image("1.0.0"),
            next_to_boot: true,
        }));
        s.update_state = state;
        s.chosen_update = chosen.then(|| image("1.1.0"));
        s
    }

    #[test]
    fn a_stale_file_never_outlives_the_disk() {
        // The file says Staged or Ready, the disk has nothing valid: Available (chosen kept).
        for state in [UpdateState::Staged, UpdateState::Ready] {
            let s = derive(Some(with_state(state, true)), &facts(Inactive::Nothing));
            assert_eq!(s.update_state, UpdateState::Available);
            assert_eq!(s.staging_partition, None);
        }
        // The file says Ready, the disk says only staged (deactivated out of band): Staged.
        let s = derive(
            Some(with_state(UpdateState::Ready, true)),
            &facts(Inactive::Staged),
        );
        assert_eq!(s.update_state, UpdateState::Staged);
        assert!(!s.staging_partition.unwrap().next_to_boot);
        // No file at all, but an applied set: Ready, the image read from disk.
        let s = derive(None, &facts(Inactive::Applied));
        assert_eq!(s.update_state, UpdateState::Ready);
        let staging = s.staging_partition.unwrap();
        assert_eq!(
            (staging.image, staging.next_to_boot),
            (image("1.1.0"), true)
        );
        assert!(!s.active_partition.unwrap().next_to_boot);
        assert_eq!(
            derive(None, &facts(Inactive::Nothing)).update_state,
            UpdateState::Idle
        );
    }

    #[test]
    fn staged_and_ready_describe_the_chosen_update_only_when_the_set_holds_it() {
        // Set B holds 1.0.0 (updog staged it by hand), 1.1.0 is chosen: the chosen update is
        // only Available, and staging_partition says what is there and whether it boots next.
        for (inactive, boots_next) in [(Inactive::Staged, false), (Inactive::Applied, true)] {
            let mut now = facts(inactive);
            now.inactive_image = Some(image("1.0.0"));
            for previous in [UpdateState::Ready, UpdateState::Staged] {
                let s = derive(Some(with_state(previous, true)), &now);
                assert_eq!(s.update_state, UpdateState::Available, "{inactive:?}");
                let staging = s.staging_partition.unwrap();
                assert_eq!(
                    (staging.image, staging.next_to_boot),
                    (image("1.0.0"), boots_next)
                );
                assert_eq!(s.active_partition.unwrap().next_to_boot, !boots_next);
            }
            // Nothing chosen (e.g. found at startup): the state describes what the set holds.
            let s = derive(None, &now);
            let expected = if boots_next {
                UpdateState::Ready
            } else {
                UpdateState::Staged
            };
            assert_eq!(s.update_state, expected);
        }
    }

    #[test]
    fn a_reboot_into_another_image_starts_fresh() {
        let mut old = with_state(UpdateState::Ready, true);
        old.available_updates = vec!["1.1.0".parse().unwrap()];
        old.record(UpdateCommand::Activate, Ok(()));
        let mut now = facts(Inactive::Nothing);
        now.active = image("1.1.0");
        let s = derive(Some(old), &now);
        assert_eq!(s.update_state, UpdateState::Idle);
        assert_eq!(s.chosen_update, None);
        assert!(s.available_updates.is_empty());
        assert!(s.most_recent_command.is_some());
    }

    #[test]
    fn an_interrupted_command_is_recorded_by_its_outcome_on_disk() {
        let mut old = with_state(UpdateState::Available, true);
        old.running_command = Some(RunningCommand {
            cmd_type: UpdateCommand::Prepare,
            started: jiff::Timestamp::now(),
        });
        let s = derive(Some(old.clone()), &facts(Inactive::Nothing));
        let cmd = s.most_recent_command.unwrap();
        assert_eq!(
            (cmd.cmd_type, cmd.cmd_status, s.update_state),
            (
                UpdateCommand::Prepare,
                CommandStatus::Failed,
                UpdateState::Available
            )
        );
        assert!(cmd.stderr.unwrap().contains("interrupted"));
        assert_eq!(s.running_command, None);
        let s = derive(Some(old), &facts(Inactive::Staged));
        assert_eq!(
            s.most_recent_command.unwrap().cmd_status,
            CommandStatus::Success
        );
        assert_eq!(s.update_state, UpdateState::Staged);
    }
}
