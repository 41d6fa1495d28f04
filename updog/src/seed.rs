//! The node's seed (0..2047): from updog.toml when set there, else `var/lib/updog/seed`,
//! generated once uniformly at random and kept. The file holds the decimal seed and a newline.

use crate::error::{self, Result};
use crate::paths::write_atomic;
use snafu::ResultExt;
use std::path::Path;
use update_metadata::{SEED_COUNT, Seed};

/// The seed to use: `configured` if given, else the one in `path`, generating and writing it
/// (atomically) the first time. A seed file holding garbage is replaced with a warning.
pub fn node_seed(configured: Option<Seed>, path: &Path) -> Result<Seed> {
    if let Some(seed) = configured {
        return Ok(seed);
    }
    match std::fs::read_to_string(path) {
        Ok(text) => match text
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| Seed::new(n).ok())
        {
            Some(seed) => return Ok(seed),
            None => tracing::warn!(
                "{}: not a seed in 0..{} ({:?}); choosing a new one",
                path.display(),
                SEED_COUNT - 1,
                text.trim()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(source).context(error::IoSnafu { verb: "read", path });
        }
    }
    let n = rand::random_range(0..u64::from(SEED_COUNT));
    let seed = Seed::new(n).map_err(|e| error::Error::StateFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomic(path, format!("{n}\n").as_bytes())?;
    tracing::info!("chose seed {n} for this node ({})", path.display());
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_and_kept_and_config_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/updog/seed");
        let first = node_seed(None, &path).unwrap();
        assert!(first.get() < 2048);
        for _ in 0..5 {
            assert_eq!(node_seed(None, &path).unwrap(), first);
        }
        let configured = Seed::new(7).unwrap();
        assert_eq!(node_seed(Some(configured), &path).unwrap(), configured);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", first.get())
        );
        std::fs::write(&path, "9999\n").unwrap();
        let replaced = node_seed(None, &path).unwrap();
        assert!(replaced.get() < 2048);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            replaced.get().to_string()
        );
    }
}
