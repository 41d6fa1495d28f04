//! Migration paths between two versions, both ways.
//!
//! From `a` to `b`: empty if equal; otherwise walk up from the lower version, at each step
//! taking the entry `(v, t)` with the largest `t` <= the upper version and appending its list.
//! A downgrade runs the same list reversed, each migration backward. This is Bottlerocket's
//! `find_migrations`.

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::names::MigrationName;
use semver::Version;
use serde::Serialize;

/// Which way the migrations of a path run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Upgrading (or staying): run each migration `--forward`, in list order.
    Forward,
    /// Downgrading: run each migration `--backward`, in list order (already reversed).
    Backward,
}

/// The migrations to run to go from one version to another, in the order to run them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationPath {
    /// Which way to run them.
    pub direction: Direction,
    /// The migration targets, in running order.
    pub migrations: Vec<MigrationName>,
}

impl Manifest {
    /// The migrations to run to go from `from` to `to`; an error naming the versions if the
    /// manifest has no entry for some step.
    pub fn migration_path(&self, from: &Version, to: &Version) -> Result<MigrationPath> {
        let (lower, upper, direction) = if from <= to {
            (from, to, Direction::Forward)
        } else {
            (to, from, Direction::Backward)
        };
        let mut migrations = Vec::new();
        let mut current = lower;
        while current != upper {
            // Keys are sorted by (from, to): the last entry from `current` with t <= upper has
            // the largest t. Keys always go upward (checked on parse and add), so this ends.
            let step = self
                .migrations()
                .range((current.clone(), current.clone())..=(current.clone(), upper.clone()))
                .next_back();
            let Some(((_, next), list)) = step else {
                return Err(Error::MissingMigration {
                    from: from.clone(),
                    to: to.clone(),
                    current: current.clone(),
                });
            };
            migrations.extend(list.iter().cloned());
            current = next;
        }
        if direction == Direction::Backward {
            migrations.reverse();
        }
        Ok(MigrationPath {
            direction,
            migrations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn names(list: &[&str]) -> Vec<MigrationName> {
        list.iter()
            .map(|n| MigrationName::new(*n).unwrap())
            .collect()
    }

    /// Bottlerocket's own test data: 1.0 → 1.1 → 1.2 → 1.3 with shortcuts 1.1 → 1.5 and 1.1 → 1.3.
    fn manifest() -> Manifest {
        let mut m = Manifest::default();
        m.add_migration(v("1.0.0"), v("1.1.0"), names(&["a_1.1.0", "b_1.1.0"]))
            .unwrap();
        m.add_migration(v("1.1.0"), v("1.2.0"), names(&["x_1.2.0"]))
            .unwrap();
        m.add_migration(v("1.1.0"), v("1.3.0"), names(&["y_1.3.0"]))
            .unwrap();
        m.add_migration(v("1.1.0"), v("1.5.0"), names(&["shortcut_1.5.0"]))
            .unwrap();
        m.add_migration(v("1.3.0"), v("1.4.0"), vec![]).unwrap();
        m
    }

    fn path(m: &Manifest, a: &str, b: &str) -> (Direction, Vec<String>) {
        let p = m.migration_path(&v(a), &v(b)).unwrap();
        (
            p.direction,
            p.migrations.iter().map(|n| n.to_string()).collect(),
        )
    }

    #[test]
    fn equal_versions_need_nothing() {
        assert_eq!(
            path(&manifest(), "1.2.0", "1.2.0"),
            (Direction::Forward, vec![])
        );
        // Even a version the manifest does not know.
        assert_eq!(path(&manifest(), "9.0.0", "9.0.0").1, Vec::<String>::new());
    }

    #[test]
    fn forward_takes_the_longest_step_within_reach() {
        let (d, list) = path(&manifest(), "1.0.0", "1.5.0");
        assert_eq!(d, Direction::Forward);
        assert_eq!(list, ["a_1.1.0", "b_1.1.0", "shortcut_1.5.0"]);
        // 1.5 is out of reach for 1.4: 1.1 → 1.3 → 1.4, the last step with no migrations.
        assert_eq!(
            path(&manifest(), "1.0.0", "1.4.0").1,
            ["a_1.1.0", "b_1.1.0", "y_1.3.0"]
        );
        assert_eq!(path(&manifest(), "1.1.0", "1.2.0").1, ["x_1.2.0"]);
    }

    #[test]
    fn backward_is_reversed() {
        let (d, list) = path(&manifest(), "1.5.0", "1.0.0");
        assert_eq!(d, Direction::Backward);
        assert_eq!(list, ["shortcut_1.5.0", "b_1.1.0", "a_1.1.0"]);
    }

    #[test]
    fn missing_step_names_the_versions() {
        let m = manifest();
        // 1.2.0 has no entry onward.
        let err = m.migration_path(&v("1.2.0"), &v("1.3.0")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to find a migration path from 1.2.0 to 1.3.0: no entry (1.2.0, t) with t <= 1.3.0"
        );
        // A walk that gets stuck midway: 1.0 → 1.1 → 1.3, and 1.3's only step (to 1.4) is
        // above 1.3.5.
        let err = m.migration_path(&v("1.3.5"), &v("1.0.0")).unwrap_err();
        assert!(
            err.to_string()
                .contains("no entry (1.3.0, t) with t <= 1.3.5"),
            "{err}"
        );
        // A version below every key.
        assert!(m.migration_path(&v("0.9.0"), &v("1.1.0")).is_err());
    }

    /// Random chains of versions 1.0.0, 1.1.0, ... with random entries (i, j), i < j, always
    /// including each single step so a path exists.
    fn arb_manifest() -> impl Strategy<Value = (Manifest, usize)> {
        (2usize..8).prop_flat_map(|n| {
            let pairs = proptest::collection::vec((0..n, 0..n, 0usize..3), 0..10);
            (Just(n), pairs).prop_map(|(n, pairs)| {
                let ver = |i: usize| Version::new(1, i as u64, 0);
                let mut m = Manifest::default();
                for i in 0..n - 1 {
                    let list = names(&[&format!("step_{i}")]);
                    m.add_migration(ver(i), ver(i + 1), list).unwrap();
                }
                for (a, b, count) in pairs {
                    let (a, b) = (a.min(b), a.max(b));
                    if b > a + 1 {
                        let list: Vec<_> = (0..count)
                            .map(|k| MigrationName::new(format!("jump_{a}_{b}_{k}")).unwrap())
                            .collect();
                        // Duplicates are refused; the first one wins.
                        let _ = m.add_migration(ver(a), ver(b), list);
                    }
                }
                (m, n)
            })
        })
    }

    proptest! {
        #[test]
        fn reverse_path_is_reversed((m, n) in arb_manifest(), a in 0usize..8, b in 0usize..8) {
            let (a, b) = (Version::new(1, (a % n) as u64, 0), Version::new(1, (b % n) as u64, 0));
            let there = m.migration_path(&a, &b).unwrap();
            let back = m.migration_path(&b, &a).unwrap();
            let mut reversed = there.migrations.clone();
            reversed.reverse();
            prop_assert_eq!(&reversed, &back.migrations);
            if a != b {
                prop_assert_ne!(there.direction, back.direction);
            }
        }
    }
}
