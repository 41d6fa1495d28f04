//! Building the three images of a release, and their lz4 copies for publishing.

use crate::error::{self, Result};
use crate::mkfs::{Ext4Spec, make_ext4};
use crate::spec::ReleaseSpec;
use crate::stage::{self, Survey};
use crate::{BOOT_KERNEL_PATH, BOOT_PARAMS_PATH, ROOT_OS_RELEASE_PATH, ROOT_TUF_ROOT_PATH};
use sha2::{Digest, Sha256};
use snafu::{ResultExt, ensure};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use verity::{Salt, TreeOptions, Uuid, VerityParams};

const MIB: u64 = 1 << 20;

/// One image of a release and its lz4-compressed copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// The raw image.
    pub path: PathBuf,
    /// Its size in bytes: what its partition must hold.
    pub size: u64,
    /// The lz4 frame copy, for publishing.
    pub lz4_path: PathBuf,
    /// Its size in bytes.
    pub lz4_size: u64,
}

/// The images of a built release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `root.ext4`: the root filesystem.
    pub root: ImageFile,
    /// `hash.verity`: ROOT's dm-verity hash tree, with a superblock.
    pub hash: ImageFile,
    /// `boot.ext4`: `verity.params` and the kernel, if any.
    pub boot: ImageFile,
    /// The parameters written to BOOT's `verity.params`.
    pub verity: VerityParams,
}

/// Builds `root.ext4`, `hash.verity` and `boot.ext4` and their `.lz4` copies in `out_dir`
/// (created if missing; files there of those names are replaced).
pub fn build_release(spec: &ReleaseSpec, out_dir: &Path) -> Result<Release> {
    spec.validate()?;
    fs::create_dir_all(out_dir).context(error::IoSnafu {
        verb: "create directory",
        path: out_dir,
    })?;
    let scratch = tempfile::Builder::new()
        .prefix(".image-builder-")
        .tempdir_in(out_dir)
        .context(error::IoSnafu {
            verb: "create scratch directory in",
            path: out_dir,
        })?;
    let identity = format!("{}\0{}\0{}", spec.version, spec.variant, spec.arch);
    let derive = |purpose: &str| -> [u8; 32] {
        Sha256::new()
            .chain_update(b"twinset image-builder\0")
            .chain_update(identity.as_bytes())
            .chain_update(b"\0")
            .chain_update(purpose.as_bytes())
            .finalize()
            .into()
    };

    // ROOT.
    let root_stage = scratch.path().join("root");
    mkdir(&root_stage)?;
    if let Some(tree) = &spec.root_tree {
        stage::copy_tree(tree, &root_stage)?;
    }
    for reserved in [ROOT_OS_RELEASE_PATH, ROOT_TUF_ROOT_PATH] {
        let path = root_stage.join(reserved);
        ensure!(
            fs::symlink_metadata(&path).is_err(),
            error::UnstageableSnafu {
                path,
                reason: "the builder writes this file; the root tree must not carry it",
            }
        );
    }
    let build_id = match &spec.build_id {
        Some(id) => id.clone(),
        None => hex::encode(&derive("build-id")[..4]),
    };
    let os_release = crate::os_release::render(&spec.version, &spec.variant, &spec.arch, &build_id);
    stage::add_file(&root_stage, ROOT_OS_RELEASE_PATH, os_release.as_bytes())?;
    stage::add_file(&root_stage, ROOT_TUF_ROOT_PATH, &spec.root_json)?;
    let root_survey = stage::survey(&root_stage)?;
    let root_size = spec
        .root_size
        .unwrap_or_else(|| auto_size(&root_survey, 4 * MIB));
    check_fits("ROOT", root_size, spec.limits.root)?;
    let root_path = out_dir.join("root.ext4");
    make_ext4(
        &Ext4Spec {
            label: "ROOT",
            uuid: uuid_from(match &spec.root_uuid_seed {
                Some(seed) => Sha256::new()
                    .chain_update(b"twinset image-builder stable root\0")
                    .chain_update(seed.as_bytes())
                    .finalize()
                    .into(),
                None => derive("root-fs"),
            }),
            size: root_size,
            inodes: root_survey.paths.len() as u64 + 64,
            epoch: spec.source_date_epoch,
            staging: &root_stage,
            survey: &root_survey,
            scratch: scratch.path(),
        },
        &root_path,
    )?;

    // HASH.
    let hash_path = out_dir.join("hash.verity");
    let mut options = TreeOptions::new(Salt::new(derive("verity-salt").to_vec()).context(
        error::VeritySnafu {
            verb: "derive salt for",
            path: &hash_path,
        },
    )?);
    options.uuid = Some(uuid_from(derive("verity-uuid")));
    let verity = {
        let root = File::open(&root_path).context(error::IoSnafu {
            verb: "open",
            path: &root_path,
        })?;
        let hash = File::create(&hash_path).context(error::IoSnafu {
            verb: "create",
            path: &hash_path,
        })?;
        let mut hash = BufWriter::new(hash);
        let params = verity::build_tree(root, &mut hash, &options).context(error::VeritySnafu {
            verb: "build hash tree into",
            path: &hash_path,
        })?;
        hash.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .context(error::IoSnafu {
                verb: "write",
                path: &hash_path,
            })?;
        params
    };
    check_fits("HASH", verity.hash_image_size(), spec.limits.hash)?;

    // BOOT.
    let boot_stage = scratch.path().join("boot");
    mkdir(&boot_stage)?;
    stage::add_file(&boot_stage, BOOT_PARAMS_PATH, verity.to_string().as_bytes())?;
    if let Some(kernel) = &spec.kernel {
        let to = boot_stage.join(BOOT_KERNEL_PATH);
        fs::copy(kernel, &to).context(error::IoSnafu {
            verb: "copy kernel",
            path: kernel,
        })?;
        fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o644)).context(
            error::IoSnafu {
                verb: "set permissions of",
                path: &to,
            },
        )?;
    }
    let boot_survey = stage::survey(&boot_stage)?;
    let boot_size = spec
        .boot_size
        .unwrap_or_else(|| auto_size(&boot_survey, 4 * MIB));
    check_fits("BOOT", boot_size, spec.limits.boot)?;
    let boot_path = out_dir.join("boot.ext4");
    make_ext4(
        &Ext4Spec {
            label: "BOOT",
            uuid: uuid_from(derive("boot-fs")),
            size: boot_size,
            inodes: boot_survey.paths.len() as u64 + 16,
            epoch: spec.source_date_epoch,
            staging: &boot_stage,
            survey: &boot_survey,
            scratch: scratch.path(),
        },
        &boot_path,
    )?;

    Ok(Release {
        root: publish(root_path)?,
        hash: publish(hash_path)?,
        boot: publish(boot_path)?,
        verity,
    })
}

/// Content, an eighth more for directories and extent blocks, the inode table, 2 MiB for the
/// rest of the metadata; rounded up to whole MiB, and at least `min`.
fn auto_size(survey: &Survey, min: u64) -> u64 {
    let entries = survey.paths.len() as u64;
    let raw = survey.content_bytes + survey.content_bytes / 8 + (entries + 64) * 320 + 2 * MIB;
    raw.div_ceil(MIB).max(min.div_ceil(MIB)) * MIB
}

fn check_fits(image: &'static str, size: u64, max: Option<u64>) -> Result<()> {
    if let Some(max) = max {
        ensure!(size <= max, error::TooLargeSnafu { image, size, max });
    }
    Ok(())
}

/// A version-4-shaped UUID from derived bytes, so builds are reproducible.
fn uuid_from(bytes: [u8; 32]) -> Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

fn mkdir(path: &Path) -> Result<()> {
    fs::create_dir(path).context(error::IoSnafu {
        verb: "create directory",
        path,
    })
}

/// Writes `<image>.lz4` (an lz4 frame with a content checksum), streaming.
fn publish(path: PathBuf) -> Result<ImageFile> {
    let mut lz4_name = path.clone().into_os_string();
    lz4_name.push(".lz4");
    let lz4_path = PathBuf::from(lz4_name);
    let mut src = File::open(&path).context(error::IoSnafu {
        verb: "open",
        path: &path,
    })?;
    let size = src
        .metadata()
        .context(error::IoSnafu {
            verb: "inspect",
            path: &path,
        })?
        .len();
    let dst = File::create(&lz4_path).context(error::IoSnafu {
        verb: "create",
        path: &lz4_path,
    })?;
    let info = lz4_flex::frame::FrameInfo::new().content_checksum(true);
    let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, BufWriter::new(dst));
    let write_err = |source| error::Error::Io {
        verb: "compress into",
        path: lz4_path.clone(),
        source,
    };
    std::io::copy(&mut src, &mut encoder).map_err(write_err)?;
    let mut out = encoder
        .finish()
        .map_err(|e| write_err(std::io::Error::other(e)))?;
    out.flush().map_err(write_err)?;
    let lz4_size = out.get_ref().metadata().map_err(write_err)?.len();
    Ok(ImageFile {
        path,
        size,
        lz4_path,
        lz4_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_size_rounds_to_mib_with_headroom() {
        let survey = Survey {
            paths: vec!["/a".into()],
            content_bytes: 10 * MIB,
        };
        let size = auto_size(&survey, 4 * MIB);
        assert_eq!(size % MIB, 0);
        assert!(size >= 10 * MIB + 10 * MIB / 8 + 2 * MIB);
        assert_eq!(auto_size(&Survey::default(), 4 * MIB), 4 * MIB);
    }

    #[test]
    fn too_large_names_image_and_sizes() {
        let err = check_fits("ROOT", 20, Some(10)).unwrap_err().to_string();
        assert_eq!(
            err,
            "Failed to fit image ROOT: 20 bytes is more than the maximum of 10 bytes"
        );
    }
}
