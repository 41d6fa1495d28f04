//! The three commands of the protocol: `init`, `refresh` and `download`.

use crate::error::{self, Result};
use crate::metadata_dir::{self, MetadataDir, encode_name};
use crate::recording::RecordingTransport;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use snafu::{OptionExt, ResultExt};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tough::schema::{Root, Signed};
use tough::{Repository, TargetName};
use updog::TrustedState;
use updog::transport::{HttpSettings, UpdogTransport};
use url::Url;

/// `init`: stores `trusted_root` as `root.json` in the metadata directory (created if
/// missing). No request is made. Bytes that are not JSON are refused and nothing is written.
pub fn init(metadata_dir: &Path, trusted_root: &Path) -> Result<()> {
    let bytes = std::fs::read(trusted_root).context(error::IoSnafu {
        verb: "read the trusted root",
        path: trusted_root,
    })?;
    metadata_dir::parse(&bytes, trusted_root)?;
    std::fs::create_dir_all(metadata_dir).context(error::IoSnafu {
        verb: "create directory",
        path: metadata_dir,
    })?;
    MetadataDir::new(metadata_dir).write("root", &bytes)
}

/// `refresh`: the client workflow of the TUF specification (5.1–5.6) through updog's
/// [`load_repository`](updog::tuf::load_repository), starting from the metadata directory.
///
/// tough's datastore lives in a temporary directory for the run, seeded with the directory's
/// timestamp, snapshot and targets metadata (its rollback checks read them there); updog's
/// version floor is built from the same files. Afterwards every role tough came to trust (a
/// newer root even when a later step failed, a timestamp even when the snapshot then failed) is
/// written back, with the bytes the repository served.
pub async fn refresh(
    metadata_dir: &Path,
    metadata_url: &str,
    targets_url: Option<&str>,
) -> Result<Trusted> {
    let dir = MetadataDir::new(metadata_dir);
    let root_path = dir.file("root");
    let root_bytes = dir.read("root")?.context(error::ParseMetadataSnafu {
        path: &root_path,
        reason: "no trusted root: run 'init' first".to_string(),
    })?;
    let root: Signed<Root> =
        serde_json::from_slice(&root_bytes).map_err(|e| error::Error::ParseMetadata {
            path: root_path.clone(),
            reason: e.to_string(),
        })?;

    let state = tempfile::Builder::new()
        .prefix("tuf-conformance-client-")
        .tempdir()
        .context(error::IoSnafu {
            verb: "create a temporary directory in",
            path: std::env::temp_dir(),
        })?;
    let mut paths = updog::Paths::new(state.path());
    paths.root_json = root_path;
    paths.tuf_datastore = state.path().join("tuf");
    paths.trusted_state = state.path().join("trusted-state.json");
    std::fs::create_dir_all(&paths.tuf_datastore).context(error::IoSnafu {
        verb: "create directory",
        path: &paths.tuf_datastore,
    })?;
    let mut versions = [0u64; 3];
    for (i, role) in ["timestamp", "snapshot", "targets"].into_iter().enumerate() {
        if let Some(bytes) = dir.read(role)? {
            let path = paths.tuf_datastore.join(format!("{role}.json"));
            std::fs::write(&path, &bytes).context(error::IoSnafu {
                verb: "write",
                path,
            })?;
            versions[i] = metadata_dir::version_of(&metadata_dir::parse(&bytes, &dir.file(role))?)
                .unwrap_or(0);
        }
    }
    let [timestamp, snapshot, targets] = versions;
    TrustedState::from_roles(&root.signed, timestamp, snapshot, targets)
        .write(&paths.trusted_state)
        .context(error::SetupSnafu)?;

    let metadata_base = base_url(metadata_url)?;
    let targets_base = base_url(targets_url.unwrap_or(metadata_url))?;
    let config = updog::Config::parse(
        &format!(
            "metadata_base_url = {:?}\ntargets_base_url = {:?}\n",
            metadata_base.as_str(),
            targets_base.as_str()
        ),
        Path::new("(command line)"),
    )
    .context(error::SetupSnafu)?;
    let transport =
        UpdogTransport::new(&config, HttpSettings::from_env()).context(error::SetupSnafu)?;
    let transport =
        RecordingTransport::new(transport, &metadata_base).with_targets_base(&targets_base);
    let log = transport.log();

    let loaded =
        updog::tuf::load_repository(&paths, &metadata_base, &targets_base, transport).await;
    match &loaded {
        // tough trusted what its datastore holds; a refusal by the floor trusts nothing new.
        Ok(_) | Err(updog::Error::LoadRepo { .. }) => {
            dir.take_top_level(&paths.tuf_datastore, &log)?;
        }
        Err(_) => {}
    }
    let repo = loaded.context(error::RefreshSnafu {
        url: metadata_base.as_str(),
    })?;
    dir.take_delegated(&repo, &log)?;
    Ok(Trusted {
        repo,
        _datastore: state,
    })
}

/// A refreshed repository, with tough's datastore for the run (removed on drop).
#[derive(Debug)]
pub struct Trusted {
    /// The loaded repository.
    pub repo: Repository,
    _datastore: tempfile::TempDir,
}

/// What happened to one target of a `download`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downloaded {
    /// Fetched, verified and stored at this path.
    Fetched(PathBuf),
    /// Already stored at this path with the length and sha256 the metadata lists: not fetched.
    AlreadyPresent(PathBuf),
}

/// `download`: refreshes, then downloads each target in order into `target_dir` as its
/// percent-encoded target path, stopping at the first failure. A stored file with the listed
/// length and sha256 is not fetched again.
pub async fn download(
    metadata_dir: &Path,
    metadata_url: &str,
    targets_url: &str,
    target_dir: &Path,
    names: &[String],
) -> Result<Vec<Downloaded>> {
    let trusted = refresh(metadata_dir, metadata_url, Some(targets_url)).await?;
    let repo = &trusted.repo;
    std::fs::create_dir_all(target_dir).context(error::IoSnafu {
        verb: "create directory",
        path: target_dir,
    })?;
    let mut done = Vec::new();
    for name in names {
        done.push(download_one(repo, target_dir, name).await?);
    }
    Ok(done)
}

async fn download_one(repo: &Repository, target_dir: &Path, name: &str) -> Result<Downloaded> {
    let target_name = TargetName::new(name).context(error::TargetNameSnafu { name })?;
    let target = crate::search::find_target(&repo.targets().signed, &target_name)
        .context(error::TargetNotFoundSnafu { name })?;
    // tough fetches what its own search finds; where that differs (its patterns let `*` match
    // `/`), the target is refused rather than checked against the wrong metadata.
    let toughs = repo.targets().signed.find_target(&target_name, false).ok();
    if toughs.is_none_or(|t| t.length != target.length || t.hashes.sha256 != target.hashes.sha256) {
        return error::SearchMismatchSnafu { name }.fail();
    }
    let path = target_dir.join(encode_name(name));
    if matches_file(&path, target.length, &target.hashes.sha256)? {
        return Ok(Downloaded::AlreadyPresent(path));
    }
    let mut stream = repo
        .read_target(&target_name)
        .await
        .context(error::FetchTargetSnafu { name })?
        .context(error::TargetNotFoundSnafu { name })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(target_dir)
        .context(error::IoSnafu {
            verb: "create a temporary file in",
            path: target_dir,
        })?;
    // tough checks the length while it streams and the sha256 at the end: an error from the
    // stream means nothing of it is kept (the temporary file is removed on drop).
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context(error::FetchTargetSnafu { name })?;
        tmp.write_all(&chunk).context(error::IoSnafu {
            verb: "write",
            path: tmp.path().to_path_buf(),
        })?;
    }
    tmp.as_file().sync_all().context(error::IoSnafu {
        verb: "sync",
        path: tmp.path().to_path_buf(),
    })?;
    tmp.persist(&path)
        .map_err(|e| e.error)
        .context(error::IoSnafu {
            verb: "write",
            path: &path,
        })?;
    Ok(Downloaded::Fetched(path))
}

/// Whether `path` holds exactly `length` bytes with this sha256.
fn matches_file(path: &Path, length: u64, sha256: &[u8]) -> Result<bool> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(source).context(error::IoSnafu { verb: "open", path }),
    };
    let io = |source| error::Error::Io {
        verb: "read",
        path: path.to_path_buf(),
        source,
    };
    if file.metadata().map_err(io)?.len() != length {
        return Ok(false);
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().as_slice() == sha256)
}

/// `url` as a base URL: with a trailing slash, so that file names join below it.
fn base_url(url: &str) -> Result<Url> {
    let with_slash = if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    };
    Url::parse(&with_slash).context(error::ParseUrlSnafu { url })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base_urls_get_a_trailing_slash() {
        assert_eq!(
            base_url("http://h:1/repo/metadata")
                .unwrap()
                .join("1.root.json")
                .unwrap()
                .as_str(),
            "http://h:1/repo/metadata/1.root.json"
        );
        assert_eq!(base_url("http://h/m/").unwrap().as_str(), "http://h/m/");
        assert!(base_url("not a url").is_err());
    }
}
