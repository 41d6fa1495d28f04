//! Declarative migrations: a JSON document of operations, applied forward and inverted backward
//! without any code (design section 9; format in docs/migrations.md).
//!
//! ```json
//! {
//!   "description": "1.1.0 adds a message of the day and renames the NTP setting",
//!   "operations": [
//!     {"op": "add", "key": "settings.motd", "value": "Welcome"},
//!     {"op": "rename", "from": "settings.ntp.servers", "to": "settings.ntp.time-servers"}
//!   ]
//! }
//! ```
//!
//! Forward refuses a datastore it could not undo exactly (adding a key that exists, renaming
//! onto a key that exists, replacing a value that already holds the new one), so that forward
//! then backward gives back the same `live/` byte for byte. Operations that drop data (`remove`,
//! `replace` without `old`, `remove-metadata`) restore backward from the kept directory of the
//! version the migration goes back to when there is one, else write the `default` the document
//! must name.

use super::Direction;
use crate::datastore::tree::Area;
use crate::datastore::{Key, MetadataKey, layout, write_value};
use crate::error::{self, Error, Result};
use crate::fsutil;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// A declarative migration document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// What the migration is for (for people; ignored by the migrator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The operations, in the order they apply forward (backward inverts them in reverse).
    pub operations: Vec<Operation>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One operation of a declarative migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// Adds a setting with a value (an object adds a subtree). Backward removes it.
    Add {
        /// The new key.
        key: Key,
        /// Its value.
        value: Value,
    },
    /// Removes a setting and everything below it. Backward restores it from the kept directory,
    /// else writes `default` (`{}`: nothing comes back).
    Remove {
        /// The key.
        key: Key,
        /// What comes back when no kept directory has it.
        default: Value,
    },
    /// Moves a setting and everything below it (with metadata) to a new name. Backward moves it
    /// back.
    Rename {
        /// The old name.
        from: Key,
        /// The new name.
        to: Key,
    },
    /// Replaces a value. With `old`: only a value equal to `old` becomes `new`, and backward
    /// turns `new` back into `old`. Without `old`: any value becomes `new`, and backward restores
    /// it from the kept directory, else writes `default`.
    Replace {
        /// The key.
        key: Key,
        /// The value it gets.
        new: Value,
        /// The value it must have to be replaced.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        old: Option<Value>,
        /// What comes back (without `old`) when no kept directory has it.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        default: Option<Value>,
    },
    /// Adds metadata to a key. Backward removes it.
    AddMetadata {
        /// The key.
        key: Key,
        /// The metadata key.
        metadata: MetadataKey,
        /// Its value.
        value: Value,
    },
    /// Removes metadata from a key. Backward restores it from the kept directory, else writes
    /// `default`.
    RemoveMetadata {
        /// The key.
        key: Key,
        /// The metadata key.
        metadata: MetadataKey,
        /// What comes back when no kept directory has it.
        default: Value,
    },
}

impl Operation {
    fn describe(&self) -> String {
        match self {
            Operation::Add { key, .. } => format!("add '{key}'"),
            Operation::Remove { key, .. } => format!("remove '{key}'"),
            Operation::Rename { from, to } => format!("rename '{from}' to '{to}'"),
            Operation::Replace { key, .. } => format!("replace '{key}'"),
            Operation::AddMetadata { key, metadata, .. } => {
                format!("add-metadata '{key}.{metadata}'")
            }
            Operation::RemoveMetadata { key, metadata, .. } => {
                format!("remove-metadata '{key}.{metadata}'")
            }
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        match self {
            Operation::Rename { from, to } if from.starts_with(to) || to.starts_with(from) => {
                Err("'from' and 'to' must not contain one another".into())
            }
            Operation::Replace { old, default, .. } if old.is_some() == default.is_some() => Err(
                "give exactly one of 'old' (inverted backward) and 'default' (restored backward)"
                    .into(),
            ),
            Operation::Replace {
                new, old, default, ..
            } if [Some(new), old.as_ref(), default.as_ref()]
                .into_iter()
                .flatten()
                .any(Value::is_object) =>
            {
                Err("replace works on one value; objects are subtrees (use remove and add)".into())
            }
            Operation::Replace {
                new,
                old: Some(old),
                ..
            } if new == old => Err("'old' and 'new' are the same".into()),
            Operation::Add { key, value } => check_members(key, value, "value"),
            Operation::Remove { key, default } => check_members(key, default, "default"),
            _ => Ok(()),
        }
    }
}

/// Refuses an object (a subtree) whose member names cannot be key segments: writing it would
/// fail at boot, or for a `default` at a rollback.
fn check_members(key: &Key, value: &Value, field: &str) -> std::result::Result<(), String> {
    let Value::Object(members) = value else {
        return Ok(());
    };
    for (name, member) in members {
        let below = key.join(name).map_err(|e| match e {
            Error::InvalidKey { key, reason } => {
                format!("its {field} would write the key '{key}': {reason}")
            }
            other => other.to_string(),
        })?;
        check_members(&below, member, field)?;
    }
    Ok(())
}

/// Refusals and their reasons, before they get the operation's context.
type OpResult<T> = std::result::Result<T, OpError>;

enum OpError {
    Refused(String),
    Other(Error),
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::Other(e)
    }
}

fn refuse<T>(reason: impl Into<String>) -> OpResult<T> {
    Err(OpError::Refused(reason.into()))
}

fn read_value(area: &Area, key: &Key) -> OpResult<Option<Value>> {
    let Some(bytes) = area.read_raw(key)? else {
        return Ok(None);
    };
    let path = area.dir.join(layout::key_path(key));
    Ok(Some(
        serde_json::from_slice(&bytes).context(error::ParseValueSnafu { path })?,
    ))
}

fn write_leaf(area: &Area, key: &Key, value: &Value) -> OpResult<()> {
    Ok(write_value(area, key, value)?)
}

impl Document {
    /// Parses and validates a document; errors name the migration.
    pub fn from_slice(name: &str, bytes: &[u8]) -> Result<Document> {
        let document: Document =
            serde_json::from_slice(bytes).context(error::ParseMigrationSnafu { name })?;
        for (i, op) in document.operations.iter().enumerate() {
            op.check().map_err(|reason| Error::InvalidMigration {
                name: name.to_string(),
                reason: format!("operation {} ({}): {reason}", i + 1, op.describe()),
            })?;
        }
        Ok(document)
    }

    /// Migrates the version directory `input` into the new directory `output` (which must not
    /// exist): a copy of `input` with the operations applied. `kept` is the kept directory of
    /// the version a backward run goes back to, if there is one.
    pub fn migrate_dir(
        &self,
        name: &str,
        input: &Path,
        output: &Path,
        direction: Direction,
        kept: Option<&Path>,
    ) -> Result<()> {
        fsutil::link_tree(input, output)?;
        self.apply_in_place(name, output, direction, kept)
    }

    /// Applies the operations to the version directory `dir` itself: a directory that only
    /// this run has made and that nothing points at yet (the output of [`migrate_dir`] or of
    /// the migration before this one), so that consecutive declarative migrations share one
    /// copy of the tree. The caller removes `dir` when this fails.
    ///
    /// [`migrate_dir`]: Document::migrate_dir
    pub fn apply_in_place(
        &self,
        name: &str,
        dir: &Path,
        direction: Direction,
        kept: Option<&Path>,
    ) -> Result<()> {
        self.apply_in_place_after(name, dir, direction, kept, &[])
    }

    /// [`apply_in_place`] for a document that a run applies after others: `earlier` are the
    /// declarative documents that come before this one forward, from the kept version on, in
    /// forward order (a backward run undoes them after this one). Their renames are undone too
    /// when a key is looked up in the kept directory, so that a value one document renamed and
    /// a later one dropped comes back from where the kept version holds it.
    ///
    /// [`apply_in_place`]: Document::apply_in_place
    pub(crate) fn apply_in_place_after(
        &self,
        name: &str,
        dir: &Path,
        direction: Direction,
        kept: Option<&Path>,
        earlier: &[&Document],
    ) -> Result<()> {
        let live = Area::new(dir.join(layout::LIVE), false);
        let pending = pending_areas(dir)?;
        let kept_live = kept.map(|k| Area::new(k.join(layout::LIVE), false));
        let ops: Vec<(usize, &Operation)> = match direction {
            Direction::Forward => self.operations.iter().enumerate().collect(),
            Direction::Backward => self.operations.iter().enumerate().rev().collect(),
        };
        for (i, op) in ops {
            let result = match direction {
                Direction::Forward => forward(op, &live, &pending),
                Direction::Backward => {
                    let kept = kept.zip(kept_live.as_ref()).map(|(dir, live)| Kept {
                        dir,
                        live,
                        rename: |key: &Key| {
                            earlier
                                .iter()
                                .rev()
                                .fold(self.source_key(i, key), |key, doc| {
                                    doc.source_key(doc.operations.len(), &key)
                                })
                        },
                    });
                    backward(op, &live, &pending, kept.as_ref())
                }
            };
            result.map_err(|e| match e {
                OpError::Refused(reason) => Error::Operation {
                    name: name.to_string(),
                    direction: direction.to_string(),
                    index: i + 1,
                    op: op.describe(),
                    reason,
                },
                OpError::Other(e) => Error::OperationFailed {
                    name: name.to_string(),
                    direction: direction.to_string(),
                    index: i + 1,
                    op: op.describe(),
                    source: Box::new(e),
                },
            })?;
        }
        Ok(())
    }

    /// Where a key seen before operation `index` (forward) was in the migration's input: undo
    /// the renames before it (all of them for `index` = the number of operations).
    fn source_key(&self, index: usize, key: &Key) -> Key {
        let mut key = key.clone();
        for op in self.operations[..index].iter().rev() {
            if let Operation::Rename { from, to } = op {
                if let Some(moved) = key.with_prefix_replaced(to, from) {
                    key = moved;
                }
            }
        }
        key
    }
}

fn pending_areas(dir: &Path) -> Result<Vec<Area>> {
    let pending = dir.join(layout::PENDING);
    let mut out = Vec::new();
    match std::fs::read_dir(&pending) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context(error::ReadSnafu { path: &pending }),
        Ok(entries) => {
            for entry in entries {
                let entry = entry.context(error::ReadSnafu { path: &pending })?;
                if entry.path().is_dir() {
                    out.push(Area::new(entry.path(), false));
                }
            }
        }
    }
    Ok(out)
}

/// The kept directory a backward run restores dropped values from.
struct Kept<'a, F: Fn(&Key) -> Key> {
    dir: &'a Path,
    live: &'a Area,
    rename: F,
}

impl<F: Fn(&Key) -> Key> Kept<'_, F> {
    fn pending(&self, area: &Area) -> Option<Area> {
        let name = area.dir.file_name()?;
        let dir: PathBuf = self.dir.join(layout::PENDING).join(name);
        Some(Area::new(dir, false))
    }
}

fn forward(op: &Operation, live: &Area, pending: &[Area]) -> OpResult<()> {
    match op {
        Operation::Add { key, value } => {
            if live.exists(key) {
                return refuse(format!(
                    "'{key}' already exists, so removing it backward would lose its value"
                ));
            }
            write_leaf(live, key, value)
        }
        Operation::Remove { key, .. } => {
            for area in std::iter::once(live).chain(pending) {
                area.remove_subtree(key)?;
            }
            Ok(())
        }
        Operation::Rename { from, to } => {
            for area in std::iter::once(live).chain(pending) {
                if area.owns_anything(to)? {
                    return refuse(format!(
                        "'{to}' already exists (or has metadata) in '{}'",
                        area.dir.display()
                    ));
                }
            }
            for area in std::iter::once(live).chain(pending) {
                area.move_subtree(from, to)?;
            }
            Ok(())
        }
        Operation::Replace { key, new, old, .. } => {
            if live.read_raw(key)?.is_none() && live.exists(key) {
                return refuse(format!("'{key}' is a subtree, not a value"));
            }
            let Some(current) = read_value(live, key)? else {
                return Ok(());
            };
            match old {
                Some(old) if current == *old => write_leaf(live, key, new),
                Some(_) if current == *new => refuse(format!(
                    "'{key}' already holds the new value, which backward would turn into the old one"
                )),
                Some(_) => Ok(()),
                None => write_leaf(live, key, new),
            }
        }
        Operation::AddMetadata {
            key,
            metadata,
            value,
        } => {
            if live.read_metadata_raw(key, metadata)?.is_some() {
                return refuse(format!("'{key}' already has metadata '{metadata}'"));
            }
            let bytes = serde_json::to_vec(value).context(error::ParseValueSnafu {
                path: layout::metadata_path(key, metadata),
            })?;
            Ok(live.write_metadata_raw(key, metadata, &bytes)?)
        }
        Operation::RemoveMetadata { key, metadata, .. } => {
            live.remove_metadata(key, metadata)?;
            Ok(())
        }
    }
}

fn backward<F: Fn(&Key) -> Key>(
    op: &Operation,
    live: &Area,
    pending: &[Area],
    kept: Option<&Kept<'_, F>>,
) -> OpResult<()> {
    match op {
        Operation::Add { key, .. } => Ok(live.remove_value_and_subtree(key)?),
        Operation::Remove { key, default } => {
            match kept {
                Some(kept) => {
                    let source = (kept.rename)(key);
                    live.restore_subtree(kept.live, &source, key)?;
                    for area in pending {
                        if let Some(kept_area) = kept.pending(area) {
                            area.restore_subtree(&kept_area, &source, key)?;
                        }
                    }
                }
                None => {
                    live.remove_subtree(key)?;
                    write_leaf(live, key, default)?;
                }
            }
            Ok(())
        }
        Operation::Rename { from, to } => {
            for area in std::iter::once(live).chain(pending) {
                area.remove_subtree(from)?;
                area.move_subtree(to, from)?;
            }
            Ok(())
        }
        Operation::Replace {
            key,
            new,
            old: Some(old),
            ..
        } => {
            if read_value(live, key)?.as_ref() == Some(new) {
                write_leaf(live, key, old)?;
            }
            Ok(())
        }
        Operation::Replace { key, default, .. } => match kept {
            Some(kept) => Ok(live.restore_subtree(kept.live, &(kept.rename)(key), key)?),
            None => match default {
                Some(default) if live.read_raw(key)?.is_some() => write_leaf(live, key, default),
                _ => Ok(()),
            },
        },
        Operation::AddMetadata { key, metadata, .. } => {
            live.remove_metadata(key, metadata)?;
            Ok(())
        }
        Operation::RemoveMetadata {
            key,
            metadata,
            default,
        } => {
            let bytes = match kept {
                Some(kept) => kept.live.read_metadata_raw(&(kept.rename)(key), metadata)?,
                None => Some(serde_json::to_vec(default).context(error::ParseValueSnafu {
                    path: layout::metadata_path(key, metadata),
                })?),
            };
            match bytes {
                Some(bytes) => live.write_metadata_raw(key, metadata, &bytes)?,
                None => {
                    live.remove_metadata(key, metadata)?;
                }
            }
            Ok(())
        }
    }
}
