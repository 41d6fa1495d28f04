//! The state machine of `thar-be-updates`: which command is allowed in which state, and the
//! state a command leaves behind. The server then checks the result against the disk
//! ([`crate::derive`]), which always wins.
//!
//! | command | allowed in | success | failure |
//! |---|---|---|---|
//! | refresh | every state | Idle/Available → Available if an update is chosen, else Idle; Staged/Ready unchanged | unchanged |
//! | prepare | Available, Staged (404 if nothing is chosen) | Staged | Available (the inactive set is left unbootable) |
//! | activate | Staged (404 if nothing is staged) | Ready | Staged |
//! | deactivate | Ready (404 if nothing is staged) | Staged | Ready |
//!
//! Anything else is refused with 409; a command while another runs (or while any updater
//! holds the lock) with 423.

use crate::status::{UpdateCommand, UpdateState, UpdateStatus};

/// Why a command is refused, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 423: a command is running, or another updater holds the lock.
    Locked(String),
    /// 409: not allowed in this state.
    Conflict(String),
    /// 404: nothing chosen (prepare) or nothing staged (activate, deactivate).
    NotFound(String),
}

impl Refusal {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Refusal::Locked(_) => 423,
            Refusal::Conflict(_) => 409,
            Refusal::NotFound(_) => 404,
        }
    }

    /// The one-line reason.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Locked(m) | Refusal::Conflict(m) | Refusal::NotFound(m) => m,
        }
    }
}

/// Whether `cmd` may run now (the caller checks the lock first).
pub fn admit(cmd: UpdateCommand, status: &UpdateStatus) -> Result<(), Refusal> {
    use UpdateCommand as C;
    use UpdateState as S;
    let state = status.update_state;
    let allowed = match cmd {
        C::Refresh => true,
        C::Prepare => matches!(state, S::Available | S::Staged),
        C::Activate => state == S::Staged,
        C::Deactivate => state == S::Ready,
    };
    if !allowed {
        return Err(Refusal::Conflict(format!(
            "Update action '{cmd}' not allowed in update state '{state}'"
        )));
    }
    match cmd {
        C::Prepare if status.chosen_update.is_none() => Err(Refusal::NotFound(
            "No update chosen: refresh the list of updates first".to_string(),
        )),
        C::Activate | C::Deactivate if status.staging_partition.is_none() => Err(
            Refusal::NotFound("No update image staged in the inactive partition set".to_string()),
        ),
        _ => Ok(()),
    }
}

/// The state `cmd` leaves behind, before the disk is consulted.
pub fn after(cmd: UpdateCommand, state: UpdateState, succeeded: bool, chosen: bool) -> UpdateState {
    use UpdateCommand as C;
    use UpdateState as S;
    match (cmd, succeeded) {
        (C::Refresh, true) => match state {
            S::Idle | S::Available if chosen => S::Available,
            S::Idle | S::Available => S::Idle,
            other => other,
        },
        (C::Prepare, true) => S::Staged,
        (C::Prepare, false) => S::Available,
        (C::Activate, true) => S::Ready,
        (C::Deactivate, true) => S::Staged,
        (C::Refresh | C::Activate | C::Deactivate, false) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{StagedImage, UpdateImage};
    use proptest::prelude::*;

    fn image() -> UpdateImage {
        UpdateImage {
            arch: "x86_64".into(),
            version: "1.1.0".parse().unwrap(),
            variant: "demo".into(),
        }
    }

    fn status(state: UpdateState, chosen: bool, staged: bool) -> UpdateStatus {
        let mut s = UpdateStatus::new(None);
        s.update_state = state;
        s.chosen_update = chosen.then(image);
        s.staging_partition = staged.then(|| StagedImage {
            image: image(),
            next_to_boot: state == UpdateState::Ready,
        });
        s
    }

    #[test]
    fn the_table_of_allowed_commands() {
        use UpdateCommand as C;
        use UpdateState as S;
        let allowed = [
            (C::Refresh, S::Idle),
            (C::Refresh, S::Available),
            (C::Refresh, S::Staged),
            (C::Refresh, S::Ready),
            (C::Prepare, S::Available),
            (C::Prepare, S::Staged),
            (C::Activate, S::Staged),
            (C::Deactivate, S::Ready),
        ];
        for cmd in C::ALL {
            for state in [S::Idle, S::Available, S::Staged, S::Ready] {
                let got = admit(cmd, &status(state, true, true));
                if allowed.contains(&(cmd, state)) {
                    assert_eq!(got, Ok(()), "{cmd} in {state}");
                } else {
                    assert_eq!(got.unwrap_err().code(), 409, "{cmd} in {state}");
                }
            }
        }
        assert_eq!(
            admit(C::Prepare, &status(S::Available, false, false))
                .unwrap_err()
                .code(),
            404
        );
        assert_eq!(
            admit(C::Activate, &status(S::Staged, true, false))
                .unwrap_err()
                .code(),
            404
        );
    }

    fn command() -> impl Strategy<Value = UpdateCommand> {
        prop::sample::select(UpdateCommand::ALL.to_vec())
    }

    proptest! {
        /// Random command sequences with random outcomes: Ready is only reached through a
        /// successful activate of a Staged update, Staged only through a successful prepare
        /// (or a deactivate of Ready), and a failed prepare always ends in Available.
        #[test]
        fn sequences_only_move_along_the_graph(
            steps in prop::collection::vec((command(), any::<bool>(), any::<bool>()), 1..40)
        ) {
            let mut state = UpdateState::Idle;
            for (cmd, ok, chosen) in steps {
                let s = status(state, chosen || state != UpdateState::Idle, matches!(state, UpdateState::Staged | UpdateState::Ready));
                if admit(cmd, &s).is_err() {
                    continue;
                }
                let next = after(cmd, state, ok, chosen);
                match next {
                    UpdateState::Ready => prop_assert!(
                        state == UpdateState::Ready || (cmd == UpdateCommand::Activate && ok)
                    ),
                    UpdateState::Staged => prop_assert!(
                        state == UpdateState::Staged
                            || (cmd == UpdateCommand::Prepare && ok)
                            || (cmd == UpdateCommand::Deactivate && ok)
                    ),
                    _ => {}
                }
                if cmd == UpdateCommand::Prepare && !ok {
                    prop_assert_eq!(next, UpdateState::Available);
                }
                state = next;
            }
        }
    }
}
