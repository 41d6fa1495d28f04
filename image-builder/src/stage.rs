//! Staging a filesystem tree: copying the given tree, adding files, and surveying the result.

use crate::error::{self, Result};
use snafu::{ResultExt, ensure};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// What a staged tree holds, for sizing its image and fixing up its inodes.
#[derive(Debug, Default)]
pub(crate) struct Survey {
    /// Every entry below the root, as an absolute image path (`/etc/os-release`), sorted.
    pub(crate) paths: Vec<String>,
    /// Bytes of file and symlink content, each rounded up to whole 4 KiB blocks.
    pub(crate) content_bytes: u64,
}

/// Copies `src` into `dst` (an existing directory): directories, regular files and symlinks,
/// keeping permission bits. Anything else (devices, sockets, FIFOs) is refused.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for entry in sorted_entries(src)? {
        let from = src.join(&entry);
        let to = dst.join(&entry);
        check_name(&from)?;
        let meta = fs::symlink_metadata(&from).context(error::IoSnafu {
            verb: "inspect",
            path: &from,
        })?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&from).context(error::IoSnafu {
                verb: "read link",
                path: &from,
            })?;
            symlink(&target, &to).context(error::IoSnafu {
                verb: "create link",
                path: &to,
            })?;
        } else if kind.is_dir() {
            fs::create_dir_all(&to).context(error::IoSnafu {
                verb: "create directory",
                path: &to,
            })?;
            copy_tree(&from, &to)?;
            set_mode(&to, meta.permissions().mode())?;
        } else if kind.is_file() {
            fs::copy(&from, &to).context(error::IoSnafu {
                verb: "copy",
                path: &from,
            })?;
            set_mode(&to, meta.permissions().mode())?;
        } else {
            return error::UnstageableSnafu {
                path: from,
                reason: "only directories, regular files and symlinks go into an image",
            }
            .fail();
        }
    }
    Ok(())
}

/// Writes `bytes` to `root/rel` with mode 0644, creating parent directories with mode 0755.
pub(crate) fn add_file(root: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        let mut dir = root.to_path_buf();
        for part in parent.strip_prefix(root).unwrap_or(parent).components() {
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).context(error::IoSnafu {
                    verb: "create directory",
                    path: &dir,
                })?;
                set_mode(&dir, 0o755)?;
            }
        }
    }
    fs::write(&path, bytes).context(error::IoSnafu {
        verb: "write",
        path: &path,
    })?;
    set_mode(&path, 0o644)
}

/// Lists every entry below `root` and adds up its content.
pub(crate) fn survey(root: &Path) -> Result<Survey> {
    let mut survey = Survey::default();
    walk(root, "", &mut survey)?;
    Ok(survey)
}

fn walk(dir: &Path, prefix: &str, survey: &mut Survey) -> Result<()> {
    for entry in sorted_entries(dir)? {
        let path = dir.join(&entry);
        let name = entry.to_string_lossy();
        let image_path = format!("{prefix}/{name}");
        let meta = fs::symlink_metadata(&path).context(error::IoSnafu {
            verb: "inspect",
            path: &path,
        })?;
        survey.paths.push(image_path.clone());
        survey.content_bytes += meta.len().div_ceil(4096) * 4096;
        if meta.is_dir() {
            walk(&path, &image_path, survey)?;
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = fs::read_dir(dir).context(error::IoSnafu {
        verb: "read directory",
        path: dir,
    })?;
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.context(error::IoSnafu {
            verb: "read directory",
            path: dir,
        })?;
        names.push(PathBuf::from(entry.file_name()));
    }
    names.sort();
    Ok(names)
}

/// Names must be UTF-8 without `"`, `\` or control characters: they are passed to debugfs.
fn check_name(path: &Path) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str());
    ensure!(
        name.is_some_and(|n| !n.chars().any(|c| c == '"' || c == '\\' || c.is_control())),
        error::UnstageableSnafu {
            path,
            reason: "names must be UTF-8 without quotes, backslashes or control characters",
        }
    );
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777)).context(error::IoSnafu {
        verb: "set permissions of",
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_and_links_and_surveys_them() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("bin")).unwrap();
        fs::write(src.path().join("bin/tool"), vec![1u8; 5000]).unwrap();
        set_mode(&src.path().join("bin/tool"), 0o755).unwrap();
        symlink("bin/tool", src.path().join("tool")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        copy_tree(src.path(), dst.path()).unwrap();
        add_file(dst.path(), "etc/os-release", b"ID=x\n").unwrap();
        let mode = fs::metadata(dst.path().join("bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let survey = survey(dst.path()).unwrap();
        assert_eq!(
            survey.paths,
            ["/bin", "/bin/tool", "/etc", "/etc/os-release", "/tool"]
        );
        assert!(survey.content_bytes >= 8192 + 4096);
    }

    #[test]
    fn refuses_names_debugfs_cannot_take() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("a\"b"), b"x").unwrap();
        let dst = tempfile::tempdir().unwrap();
        let err = copy_tree(src.path(), dst.path()).unwrap_err().to_string();
        assert!(err.starts_with("Failed to stage '"), "{err}");
    }
}
