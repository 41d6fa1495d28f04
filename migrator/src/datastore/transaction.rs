//! Pending transactions: `pending/<transaction>/` holds keys set but not yet committed.
//!
//! Commit copies each pending key into `live/` (each by an atomic rename) and then removes the
//! transaction's directory. A crash during a commit leaves the transaction in place; committing
//! it again writes the same values, so a commit is never half-applied for good.

use super::tree::Area;
use super::{Datastore, Key, layout, parse, write_value};
use crate::error::{self, Error, Result};
use crate::fsutil;
use serde_json::Value;
use snafu::ResultExt;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A pending transaction of a [`Datastore`].
#[derive(Debug, Clone)]
pub struct Transaction {
    name: String,
    dir: PathBuf,
    live: Area,
}

impl Transaction {
    /// The transaction `name` (`[A-Za-z0-9_-]+`) of `datastore`.
    pub(crate) fn new(datastore: &Datastore, name: &str) -> Result<Transaction> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::InvalidKey {
                key: name.escape_debug().to_string(),
                reason: "a transaction name is [A-Za-z0-9_-]+".into(),
            });
        }
        Ok(Transaction {
            name: name.to_string(),
            dir: datastore.path().join(layout::PENDING).join(name),
            live: datastore.live(),
        })
    }

    /// The transaction's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn area(&self) -> Area {
        Area::new(self.dir.clone(), self.live.durable)
    }

    /// Sets a key in the transaction (objects are subtrees, as in [`Datastore::set`]).
    pub fn set(&self, key: &Key, value: &Value) -> Result<()> {
        write_value(&self.area(), key, value)
    }

    /// A key's pending value.
    pub fn get(&self, key: &Key) -> Result<Option<Value>> {
        parse(
            &self.dir.join(layout::key_path(key)),
            self.area().read_raw(key)?,
        )
    }

    /// Every pending key and value.
    pub fn list(&self) -> Result<BTreeMap<Key, Value>> {
        let (values, _) = self.area().list(None)?;
        values
            .into_iter()
            .map(|(key, bytes)| {
                let path = self.dir.join(layout::key_path(&key));
                let value =
                    serde_json::from_slice(&bytes).context(error::ParseValueSnafu { path })?;
                Ok((key, value))
            })
            .collect()
    }

    /// Moves every pending key into `live/` and removes the transaction; the keys committed.
    pub fn commit(self) -> Result<Vec<Key>> {
        let (values, _) = self.area().list(None)?;
        for (key, bytes) in &values {
            self.live.write_raw(key, bytes)?;
        }
        fsutil::remove_any(&self.dir)?;
        Ok(values.into_keys().collect())
    }

    /// Drops the transaction without committing it.
    pub fn discard(self) -> Result<()> {
        fsutil::remove_any(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pending_keys_are_invisible_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::new(dir.path());
        let key = Key::new("settings.motd").unwrap();
        let tx = ds.transaction("apply-1").unwrap();
        tx.set(&key, &json!("pending")).unwrap();
        assert!(dir.path().join("pending/apply-1/settings/motd").is_file());
        assert_eq!(tx.get(&key).unwrap(), Some(json!("pending")));
        assert_eq!(ds.get(&key).unwrap(), None);
        assert_eq!(tx.commit().unwrap(), vec![key.clone()]);
        assert_eq!(ds.get(&key).unwrap(), Some(json!("pending")));
        assert!(!dir.path().join("pending/apply-1").exists());
        assert!(ds.transaction("../x").is_err());
    }
}
