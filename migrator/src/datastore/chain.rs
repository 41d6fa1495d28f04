//! The version links: `current -> vM -> vM.m -> vM.m.p -> vM.m.p_<random>`.
//!
//! A flip writes the links leaf first, each as a temporary link renamed over the old one,
//! followed by a sync of the datastore root. Exactly one of those renames changes what
//! `current` resolves to, so a crash leaves `current` at the old or the new directory.

use super::layout::{self, CURRENT, chain_links, parse_dir_name};
use crate::error::{self, Error, Result};
use crate::fsutil;
use crate::steps::{Step, Steps};
use semver::Version;
use snafu::ResultExt;
use std::path::Path;

fn read_link(root: &Path, name: &str) -> Result<String> {
    let path = root.join(name);
    let target = std::fs::read_link(&path).context(error::ReadSnafu { path: &path })?;
    let target = target.to_string_lossy().into_owned();
    if target.contains('/') {
        return Err(Error::BrokenChain {
            path,
            reason: format!("'{target}' is not a name in the datastore root"),
        });
    }
    Ok(target)
}

/// The version and directory name `current` resolves to; `None` when there is no `current`.
pub(crate) fn resolve(root: &Path) -> Result<Option<(Version, String)>> {
    let current = root.join(CURRENT);
    match std::fs::symlink_metadata(&current) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context(error::ReadSnafu { path: &current }),
        Ok(_) => {}
    }
    let major = read_link(root, CURRENT)?;
    let minor = read_link(root, &major)?;
    let patch = read_link(root, &minor)?;
    let dir = read_link(root, &patch)?;
    let broken = |path: &str, reason: String| Error::BrokenChain {
        path: root.join(path),
        reason,
    };
    let version = parse_dir_name(&dir).ok_or_else(|| {
        broken(
            &patch,
            format!("'{dir}' is not a version directory name (vM.m.p_<random>)"),
        )
    })?;
    let expected = chain_links(&version, &dir);
    for (link, (want_name, want_target)) in
        [CURRENT, major.as_str(), minor.as_str(), patch.as_str()]
            .iter()
            .rev()
            .zip(expected.iter())
    {
        let target = read_link(root, link)?;
        if *link != want_name || target != *want_target {
            return Err(broken(
                link,
                format!("expected '{want_name} -> {want_target}' for directory '{dir}'"),
            ));
        }
    }
    if !root.join(&dir).is_dir() {
        return Err(broken(&patch, format!("'{dir}' is not a directory")));
    }
    Ok(Some((version, dir)))
}

/// Points `current` at `dir_name` (a directory of `version` in `root`), leaf first.
pub(crate) fn flip(root: &Path, version: &Version, dir_name: &str, steps: &Steps) -> Result<()> {
    layout::check_version(version)?;
    for (name, target) in chain_links(version, dir_name) {
        let path = root.join(&name);
        if std::fs::read_link(&path).is_ok_and(|t| t.as_os_str() == target.as_str()) {
            continue;
        }
        let tmp = root.join(format!(".tmp-link-{name}"));
        fsutil::remove_any(&tmp)?;
        std::os::unix::fs::symlink(&target, &tmp).context(error::WriteSnafu { path: &tmp })?;
        std::fs::rename(&tmp, &path).context(error::RenameSnafu {
            from: &tmp,
            to: &path,
        })?;
        fsutil::sync_dir(root)?;
        steps.record(Step::Link { name })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_and_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(resolve(root).unwrap(), None);
        let v1 = Version::new(1, 0, 0);
        let v2 = Version::new(1, 1, 0);
        std::fs::create_dir(root.join("v1.0.0_aaaa")).unwrap();
        std::fs::create_dir(root.join("v1.1.0_bbbb")).unwrap();
        let steps = Steps::new();
        flip(root, &v1, "v1.0.0_aaaa", &steps).unwrap();
        assert_eq!(steps.taken().len(), 4);
        assert_eq!(
            resolve(root).unwrap(),
            Some((v1.clone(), "v1.0.0_aaaa".into()))
        );
        flip(root, &v2, "v1.1.0_bbbb", &steps).unwrap();
        // v1.1.0 and v1.1 are new, v1 changes, current already points at v1.
        assert_eq!(steps.taken().len(), 7);
        assert_eq!(resolve(root).unwrap(), Some((v2, "v1.1.0_bbbb".into())));
        assert_eq!(
            std::fs::read_link(root.join("v1")).unwrap().to_str(),
            Some("v1.1")
        );
        // Back again: only v1 changes.
        flip(root, &v1, "v1.0.0_aaaa", &steps).unwrap();
        assert_eq!(steps.taken().len(), 8);
        // A broken chain is an error naming the link.
        std::fs::remove_file(root.join("v1.0")).unwrap();
        std::os::unix::fs::symlink("v1.1.0", root.join("v1.0")).unwrap();
        let err = resolve(root).unwrap_err().to_string();
        assert!(err.contains("Failed to follow the version links"), "{err}");
    }
}
