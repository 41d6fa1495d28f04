//! Reading a release back from its images (whole image files or partitions of a disk image)
//! with the pure-Rust ext4 reader `ext4-view`: what the emulated bootloader and updog's check of
//! a written set use.

use crate::error::{self, Result};
use crate::os_release::OsRelease;
use crate::{BOOT_PARAMS_PATH, ROOT_HEALTH_CHECKS_PATH, ROOT_OS_RELEASE_PATH, ROOT_TUF_ROOT_PATH};
use ext4_view::{Ext4, Ext4Read};
use snafu::{ResultExt, ensure};
use std::io::{self, Read, Seek, SeekFrom};
use verity::VerityParams;

/// Largest `verity.params` or `os-release` read back.
const MAX_TEXT: u64 = 64 * 1024;
/// Largest `root.json` read back.
const MAX_ROOT_JSON: u64 = 4 << 20;

/// The bytes `[offset, offset + len)` of a file or disk image holding an ext4 filesystem.
#[derive(Debug)]
pub struct ImageRegion<T> {
    inner: T,
    offset: u64,
    len: u64,
}

impl<T: Read + Seek> ImageRegion<T> {
    /// The region of `len` bytes at `offset` (a partition of a disk image, for example).
    pub fn new(inner: T, offset: u64, len: u64) -> Self {
        ImageRegion { inner, offset, len }
    }

    /// The whole of `inner` (an image file).
    pub fn whole(mut inner: T) -> io::Result<Self> {
        let len = inner.seek(SeekFrom::End(0))?;
        Ok(ImageRegion {
            inner,
            offset: 0,
            len,
        })
    }
}

impl<T: Read + Seek> Ext4Read for ImageRegion<T> {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let end = start_byte.checked_add(dst.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(Box::new(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {start_byte} passes the end of the {}-byte image",
                    dst.len(),
                    self.len
                ),
            )));
        }
        self.inner.seek(SeekFrom::Start(self.offset + start_byte))?;
        self.inner.read_exact(dst)?;
        Ok(())
    }
}

/// What the emulated bootloader and updog learn from a ROOT image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootInfo {
    /// `etc/os-release`, parsed (its text is kept too).
    pub os_release: OsRelease,
    /// `usr/share/updog/root.json`, the trusted TUF root shipped in the image.
    pub root_json: Vec<u8>,
    /// `etc/twinset/health-checks.toml`, the image's boot health checks, when it has one.
    pub health_checks: Option<String>,
}

/// Reads `verity.params` from a BOOT image.
pub fn read_boot_params<T: Read + Seek + 'static>(boot: ImageRegion<T>) -> Result<VerityParams> {
    let fs = Ext4::load(Box::new(boot)).context(error::OpenExt4Snafu { image: "BOOT" })?;
    let text = read_text(&fs, "BOOT", BOOT_PARAMS_PATH)?;
    text.parse().context(error::BootParamsSnafu)
}

/// Reads `etc/os-release` and `usr/share/updog/root.json` from a ROOT image.
pub fn read_root_info<T: Read + Seek + 'static>(root: ImageRegion<T>) -> Result<RootInfo> {
    let fs = Ext4::load(Box::new(root)).context(error::OpenExt4Snafu { image: "ROOT" })?;
    let os_release = read_text(&fs, "ROOT", ROOT_OS_RELEASE_PATH)?.parse()?;
    let root_json = read_limited(&fs, "ROOT", ROOT_TUF_ROOT_PATH, MAX_ROOT_JSON)?;
    let checks = format!("/{ROOT_HEALTH_CHECKS_PATH}");
    let health_checks = if fs.exists(checks.as_str()).context(error::ReadExt4Snafu {
        image: "ROOT",
        path: ROOT_HEALTH_CHECKS_PATH,
    })? {
        Some(read_text(&fs, "ROOT", ROOT_HEALTH_CHECKS_PATH)?)
    } else {
        None
    };
    Ok(RootInfo {
        os_release,
        root_json,
        health_checks,
    })
}

fn read_text(fs: &Ext4, image: &'static str, path: &'static str) -> Result<String> {
    let bytes = read_limited(fs, image, path, MAX_TEXT)?;
    String::from_utf8(bytes)
        .ok()
        .ok_or(error::Error::NotUtf8 { image, path })
}

fn read_limited(fs: &Ext4, image: &'static str, path: &'static str, max: u64) -> Result<Vec<u8>> {
    let abs = format!("/{path}");
    let size = fs
        .metadata(abs.as_str())
        .context(error::ReadExt4Snafu { image, path })?
        .len();
    ensure!(
        size <= max,
        error::FileTooLargeSnafu {
            image,
            path,
            size,
            max
        }
    );
    fs.read(abs.as_str())
        .context(error::ReadExt4Snafu { image, path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn region_refuses_reads_past_its_end() {
        let mut region = ImageRegion::new(Cursor::new(vec![7u8; 100]), 10, 50);
        let mut buf = [0u8; 10];
        Ext4Read::read(&mut region, 40, &mut buf).unwrap();
        assert_eq!(buf, [7; 10]);
        assert!(Ext4Read::read(&mut region, 41, &mut buf).is_err());
    }

    #[test]
    fn garbage_is_a_one_line_error_naming_the_image() {
        let region = ImageRegion::new(Cursor::new(vec![0u8; 1 << 16]), 0, 1 << 16);
        let err = read_boot_params(region).unwrap_err().to_string();
        assert!(
            err.starts_with("Failed to open BOOT image as ext4"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
