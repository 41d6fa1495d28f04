//! Durable steps, counted so that tests can crash a run after any one of them.
//!
//! Every write that a crash could leave behind on its own is one [`Step`]: each migration's
//! synced output, each version-link rename, each state-file write, each pruned directory. The
//! migrator reports each to [`Steps`]; a test sets [`Steps::crash_after`] to make the run stop
//! right after step N exactly as a crash would (no clean-up runs), then runs the migrator again.

use crate::error::{Error, Result};
use std::fmt;
use std::sync::{Arc, Mutex};

/// One durable step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// A migration's output (or the copy made when no migration runs) is complete and synced.
    MigrationOutput {
        /// The migration's position in the path, from 0.
        index: usize,
        /// The migration, or `copy`.
        name: String,
    },
    /// A version link was replaced (temporary link renamed over it, directory synced).
    Link {
        /// The link's name: `vM.m.p`, `vM.m`, `vM` or `current`.
        name: String,
    },
    /// `migration-state.json` was written and synced.
    State,
    /// A version directory (or a dangling link) that is no longer needed was removed.
    Prune {
        /// Its name.
        name: String,
    },
}

impl Step {
    /// The step's kind, without its details: `output`, `link`, `state` or `prune`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::MigrationOutput { .. } => "output",
            Step::Link { .. } => "link",
            Step::State => "state",
            Step::Prune { .. } => "prune",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::MigrationOutput { index, name } => {
                write!(f, "output of migration {index} '{name}'")
            }
            Step::Link { name } => write!(f, "link '{name}'"),
            Step::State => f.write_str("state file"),
            Step::Prune { name } => write!(f, "prune '{name}'"),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    taken: Vec<Step>,
    crash_after: Option<usize>,
}

/// Records durable steps; optionally stops the run after the Nth, as a crash would.
#[derive(Debug, Clone, Default)]
pub struct Steps {
    inner: Arc<Mutex<Inner>>,
}

impl Steps {
    /// A recorder that never crashes.
    pub fn new() -> Steps {
        Steps::default()
    }

    /// A recorder that makes the run fail with [`Error::Crashed`] right after step `n` (from 1).
    pub fn crash_after(n: usize) -> Steps {
        let steps = Steps::default();
        steps.lock().crash_after = Some(n);
        steps
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a test panicked while holding it; the list is still valid.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The steps taken so far, in order.
    pub fn taken(&self) -> Vec<Step> {
        self.lock().taken.clone()
    }

    /// Records a step; fails if a crash was asked for here.
    pub(crate) fn record(&self, step: Step) -> Result<()> {
        // Power-cut tests of whole nodes stop the process here (see the powercut crate).
        powercut::point(&format!("migrator.{}", step.kind()));
        let mut inner = self.lock();
        inner.taken.push(step.clone());
        let number = inner.taken.len();
        if inner.crash_after == Some(number) {
            return Err(Error::Crashed {
                number,
                step: step.to_string(),
            });
        }
        Ok(())
    }
}
