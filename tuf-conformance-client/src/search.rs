//! The target search of the TUF specification (5.6.7): a preorder depth-first search of the
//! delegations from the top-level targets role, each role visited once, stopping at a
//! terminating role, with path patterns matched as the specification says — a wildcard does
//! not match the path separator `/`.
//!
//! tough's own search matches patterns with globset's defaults, where `*` also matches `/`, so
//! a role delegated `*.txt` could sign `dir/a.txt`. The client searches with this module and
//! refuses a target where tough would pick a different one (see docs/tuf-conformance.md).

use globset::GlobBuilder;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use tough::TargetName;
use tough::schema::{PathSet, Target, Targets};

/// The target `name` as the specification's search finds it, from the top-level `targets`.
pub fn find_target<'a>(targets: &'a Targets, name: &TargetName) -> Option<&'a Target> {
    let mut visited = BTreeSet::new();
    let mut terminated = false;
    search(targets, name, &mut visited, &mut terminated)
}

fn search<'a>(
    targets: &'a Targets,
    name: &TargetName,
    visited: &mut BTreeSet<String>,
    terminated: &mut bool,
) -> Option<&'a Target> {
    if let Some(target) = targets.targets.get(name) {
        return Some(target);
    }
    let delegations = targets.delegations.as_ref()?;
    for role in &delegations.roles {
        if visited.contains(&role.name) || !matches(&role.paths, name.raw()) {
            continue;
        }
        visited.insert(role.name.clone());
        if let Some(child) = &role.targets {
            if let Some(found) = search(&child.signed, name, visited, terminated) {
                return Some(found);
            }
            if *terminated {
                break;
            }
        }
        if role.terminating {
            *terminated = true;
            break;
        }
    }
    None
}

/// Whether a delegation's paths cover `path`.
pub fn matches(paths: &PathSet, path: &str) -> bool {
    match paths {
        PathSet::Paths(patterns) => patterns.iter().any(|p| pattern_matches(p.value(), path)),
        PathSet::PathHashPrefixes(prefixes) => {
            let digest = hex::encode(Sha256::digest(path.as_bytes()));
            prefixes.iter().any(|p| digest.starts_with(p.value()))
        }
    }
}

/// Shell-style matching (`*`, `?`, `[...]`) in which no wildcard matches `/`. A pattern that
/// does not parse matches nothing.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .is_ok_and(|glob| glob.compile_matcher().is_match(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_do_not_cross_directories() {
        assert!(pattern_matches("*.txt", "a.txt"));
        assert!(!pattern_matches("*.txt", "dir/a.txt"));
        assert!(pattern_matches("dir/*.txt", "dir/a.txt"));
        assert!(!pattern_matches("dir/*", "dir/sub/a.txt"));
        assert!(pattern_matches("foo-version-?.tgz", "foo-version-2.tgz"));
        assert!(!pattern_matches(
            "foo-version-?.tgz",
            "foo-version-alpha.tgz"
        ));
        assert!(pattern_matches("*", "top"));
        assert!(!pattern_matches("*", "a/b"));
    }
}
