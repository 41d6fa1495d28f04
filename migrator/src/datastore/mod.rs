//! One version of the settings datastore: a directory holding `live/` and `pending/`.
//!
//! [`Datastore`] reads and writes keys in such a directory; [`Datastore::open_current`] finds
//! the one `current` points at. Values are JSON, one per file; objects are subtrees (writing
//! `{"a": 1}` to `settings.x` writes the key `settings.x.a`), as Bottlerocket's serializer
//! flattens them. See docs/datastore.md.

pub(crate) mod chain;
pub mod key;
pub mod layout;
pub mod transaction;
pub(crate) mod tree;

use crate::error::{self, Error, Result};
pub use key::{Key, MetadataKey};
use serde_json::{Map, Value};
use snafu::ResultExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub use transaction::Transaction;
use tree::Area;

/// One version directory of the datastore.
#[derive(Debug, Clone)]
pub struct Datastore {
    dir: PathBuf,
    durable: bool,
}

impl Datastore {
    /// The datastore in version directory `dir` (it need not exist yet; writes create it).
    pub fn new(dir: impl Into<PathBuf>) -> Datastore {
        Datastore {
            dir: dir.into(),
            durable: true,
        }
    }

    /// The version directory `<root>/current` resolves to.
    pub fn open_current(root: &Path) -> Result<Datastore> {
        let (_, name) = chain::resolve(root)?.ok_or_else(|| Error::NoDatastore {
            path: root.to_path_buf(),
        })?;
        Ok(Datastore::new(root.join(name)))
    }

    /// The version directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn live(&self) -> Area {
        Area::new(self.dir.join(layout::LIVE), self.durable)
    }

    /// The value of a committed key, if it has one.
    pub fn get(&self, key: &Key) -> Result<Option<Value>> {
        let area = self.live();
        parse(&area.dir.join(layout::key_path(key)), area.read_raw(key)?)
    }

    /// Sets a committed key. An object is a subtree: each of its members is written below `key`.
    pub fn set(&self, key: &Key, value: &Value) -> Result<()> {
        write_value(&self.live(), key, value)
    }

    /// Removes a key, the keys below it and their metadata; whether anything was there.
    pub fn remove(&self, key: &Key) -> Result<bool> {
        self.live().remove_subtree(key)
    }

    /// Every committed key at or below `prefix` (all keys with `None`), with its value.
    pub fn list(&self, prefix: Option<&Key>) -> Result<BTreeMap<Key, Value>> {
        let area = self.live();
        let (values, _) = area.list(prefix)?;
        values
            .into_iter()
            .map(|(key, bytes)| {
                let path = area.dir.join(layout::key_path(&key));
                let value =
                    serde_json::from_slice(&bytes).context(error::ParseValueSnafu { path })?;
                Ok((key, value))
            })
            .collect()
    }

    /// A key's metadata value.
    pub fn get_metadata(&self, key: &Key, meta: &MetadataKey) -> Result<Option<Value>> {
        let area = self.live();
        parse(
            &area.dir.join(layout::metadata_path(key, meta)),
            area.read_metadata_raw(key, meta)?,
        )
    }

    /// Sets a key's metadata (stored next to the key's file as `<key-file>.<metadata>`).
    pub fn set_metadata(&self, key: &Key, meta: &MetadataKey, value: &Value) -> Result<()> {
        let bytes = serde_json::to_vec(value).context(error::ParseValueSnafu {
            path: layout::metadata_path(key, meta),
        })?;
        self.live().write_metadata_raw(key, meta, &bytes)
    }

    /// Removes a key's metadata; whether it was there.
    pub fn remove_metadata(&self, key: &Key, meta: &MetadataKey) -> Result<bool> {
        self.live().remove_metadata(key, meta)
    }

    /// Every metadata value of keys at or below `prefix`.
    pub fn list_metadata(
        &self,
        prefix: Option<&Key>,
    ) -> Result<BTreeMap<(Key, MetadataKey), Value>> {
        let area = self.live();
        let (_, metadata) = area.list(prefix)?;
        metadata
            .into_iter()
            .map(|((key, meta), bytes)| {
                let path = area.dir.join(layout::metadata_path(&key, &meta));
                let value =
                    serde_json::from_slice(&bytes).context(error::ParseValueSnafu { path })?;
                Ok(((key, meta), value))
            })
            .collect()
    }

    /// The committed keys at or below `prefix` as one nested JSON object (`settings.motd` is
    /// `{"settings": {"motd": …}}`).
    pub fn to_value(&self, prefix: Option<&Key>) -> Result<Value> {
        Ok(nest(self.list(prefix)?))
    }

    /// Writes every leaf of a nested object as a committed key (the inverse of `to_value`).
    pub fn write_tree(&self, tree: &Value) -> Result<()> {
        let Value::Object(map) = tree else {
            return Err(Error::InvalidValue {
                key: String::new(),
                reason: "the top of a tree must be an object".into(),
            });
        };
        let area = self.live();
        for (name, value) in map {
            write_value(&area, &Key::from_segments([name.as_str()])?, value)?;
        }
        Ok(())
    }

    /// Starts (or continues) the pending transaction `name`.
    pub fn transaction(&self, name: &str) -> Result<Transaction> {
        Transaction::new(self, name)
    }
}

fn parse(path: &Path, bytes: Option<Vec<u8>>) -> Result<Option<Value>> {
    bytes
        .map(|b| serde_json::from_slice(&b).context(error::ParseValueSnafu { path }))
        .transpose()
}

/// Writes a value under `key` in `area`, flattening objects into subkeys.
pub(crate) fn write_value(area: &Area, key: &Key, value: &Value) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (name, member) in map {
                write_value(area, &key.join(name)?, member)?;
            }
            Ok(())
        }
        leaf => {
            let bytes = serde_json::to_vec(leaf).context(error::ParseValueSnafu {
                path: layout::key_path(key),
            })?;
            area.write_raw(key, &bytes)
        }
    }
}

/// Nests flat keys into one object.
pub fn nest(values: BTreeMap<Key, Value>) -> Value {
    let mut root = Map::new();
    for (key, value) in values {
        let mut node = &mut root;
        let (last, parents) = key
            .segments()
            .split_last()
            .map_or(("", &[][..]), |(l, p)| (l.as_str(), p));
        for segment in parents {
            let entry = node
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(next) = entry else {
                unreachable!("just made an object")
            };
            node = next;
        }
        node.insert(last.to_string(), value);
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(name: &str) -> Key {
        Key::new(name).unwrap()
    }

    #[test]
    fn writes_reads_lists_and_nests() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::new(dir.path().join("v1.0.0_x"));
        ds.set(&k("settings.motd"), &json!("hi")).unwrap();
        ds.set(
            &k("settings.kubernetes.node-labels"),
            &json!({"example.com/role": "web", "tier": 1}),
        )
        .unwrap();
        assert_eq!(ds.get(&k("settings.motd")).unwrap(), Some(json!("hi")));
        assert_eq!(ds.get(&k("settings.nothing")).unwrap(), None);
        assert!(
            dir.path()
                .join("v1.0.0_x/live/settings/kubernetes/node-labels/example%2Ecom%2Frole")
                .is_file()
        );
        let meta = MetadataKey::new("affected-services").unwrap();
        ds.set_metadata(&k("settings.motd"), &meta, &json!(["motd"]))
            .unwrap();
        assert!(
            dir.path()
                .join("v1.0.0_x/live/settings/motd.affected-services")
                .is_file()
        );
        // Metadata is not a key.
        assert_eq!(ds.list(None).unwrap().len(), 3);
        assert_eq!(
            ds.to_value(Some(&k("settings.kubernetes"))).unwrap(),
            json!({"settings": {"kubernetes": {"node-labels": {"example.com/role": "web", "tier": 1}}}})
        );
        assert_eq!(ds.list_metadata(None).unwrap().len(), 1);

        let copy = Datastore::new(dir.path().join("v1.0.0_y"));
        copy.write_tree(&ds.to_value(None).unwrap()).unwrap();
        assert_eq!(copy.list(None).unwrap(), ds.list(None).unwrap());

        assert!(ds.remove(&k("settings.motd")).unwrap());
        assert!(
            !dir.path()
                .join("v1.0.0_x/live/settings/motd.affected-services")
                .exists()
        );
        assert!(ds.remove(&k("settings.kubernetes")).unwrap());
        assert!(!ds.remove(&k("settings.kubernetes")).unwrap());
        // Empty parents go too.
        assert!(!dir.path().join("v1.0.0_x/live/settings").exists());
    }

    #[test]
    fn a_value_cannot_also_be_a_subtree() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::new(dir.path());
        ds.set(&k("a.b"), &json!(1)).unwrap();
        let err = ds.set(&k("a.b.c"), &json!(1)).unwrap_err().to_string();
        assert!(err.contains("holds a value, not a subtree"), "{err}");
        let err = ds.set(&k("a"), &json!(1)).unwrap_err().to_string();
        assert!(err.contains("has keys below it"), "{err}");
    }
}
