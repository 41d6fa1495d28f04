//! What the update API reads: its status file `run/update-status.json` after a restart (the
//! document `GET /updates/status` serves and `apiclient` parses) and the progress lines of
//! `GET /updates/progress`. The server takes no request bodies.

use update_api::derive::derive;
use update_api::disk::{DiskFacts, Inactive};
use update_api::machine::admit;
use update_api::{UpdateCommand, UpdateImage, UpdateState, UpdateStatus};
use updog::ProgressEvent;

/// Parses `data` as a status document (as the server loads it and the client reads it) and,
/// line by line, as progress events. What parses round-trips; deriving the state from the
/// document and any disk never panics and gives the state the disk says (Staged and Ready
/// only for the chosen update, when there is one); every command is admitted or refused
/// without panicking.
pub fn api_status(data: &[u8]) {
    for line in data.split(|b| *b == b'\n') {
        if let Ok(event) = serde_json::from_slice::<ProgressEvent>(line) {
            let again: ProgressEvent =
                serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
            assert_eq!(without_rate(again), without_rate(event));
        }
    }
    let Ok(status) = serde_json::from_slice::<UpdateStatus>(data) else {
        return;
    };
    let json = serde_json::to_vec_pretty(&status).unwrap();
    let again: UpdateStatus = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        status_without_rate(again),
        status_without_rate(status.clone())
    );
    let _ = update_api::client::update::describe(&status);
    let _ = update_api::client::update::required(&status);

    let booted = UpdateImage {
        arch: "x86_64".into(),
        version: semver::Version::new(1, 0, 0),
        variant: "demo".into(),
    };
    let actives = status
        .active_partition
        .as_ref()
        .map(|p| p.image.clone())
        .into_iter()
        .chain([booted.clone()]);
    for active in actives {
        for inactive in [Inactive::Nothing, Inactive::Staged, Inactive::Applied] {
            for inactive_image in [None, Some(booted.clone())] {
                let facts = DiskFacts {
                    active: active.clone(),
                    inactive,
                    inactive_image,
                };
                let derived = derive(Some(status.clone()), &facts);
                // Staged and Ready describe the chosen update only when the set holds it.
                let holds_another = match (&derived.chosen_update, &derived.staging_partition) {
                    (Some(chosen), Some(staging)) => *chosen != staging.image,
                    _ => false,
                };
                let expected = match inactive {
                    Inactive::Applied | Inactive::Staged if holds_another => UpdateState::Available,
                    Inactive::Applied => UpdateState::Ready,
                    Inactive::Staged => UpdateState::Staged,
                    Inactive::Nothing if derived.chosen_update.is_some() => UpdateState::Available,
                    Inactive::Nothing => UpdateState::Idle,
                };
                assert_eq!(derived.update_state, expected);
                assert!(derived.running_command.is_none());
                assert_eq!(
                    derived.active_partition.as_ref().map(|p| &p.image),
                    Some(&active)
                );
                serde_json::to_vec(&derived).unwrap();
                for cmd in UpdateCommand::ALL {
                    let _ = admit(cmd, &derived);
                }
            }
        }
    }
}

/// serde_json reads floats to the nearest representable value only with a feature we do not
/// need; the rate is for display, so it is left out of the comparison.
fn without_rate(mut event: ProgressEvent) -> ProgressEvent {
    event.rate = event.rate.map(|_| 0.0);
    event
}

fn status_without_rate(mut status: UpdateStatus) -> UpdateStatus {
    status.progress = status.progress.map(without_rate);
    status
}
