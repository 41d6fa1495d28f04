//! Strict reading of manifest.json.
//!
//! serde_json keeps the last of duplicate keys in a map, so the manifest is first read into a
//! raw shape that keeps every map entry in document order ([`Entries`]), and then checked field
//! by field into the typed model; each error is wrapped with the field it was found in, such as
//! `updates[2].waves`. Unknown fields are ignored, as Bottlerocket's parser does.

use crate::chunks::ChunkIndexes;
use crate::error::{Error, Result};
use crate::manifest::{Images, Manifest, Update};
use crate::names::{MigrationName, TargetName};
use crate::waves::{Seed, Waves, parse_digits};
use semver::Version;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A JSON object read as its entries in document order, duplicates kept.
#[derive(Debug)]
pub(crate) struct Entries<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// The manifest as JSON has it. Derived struct deserialisation already refuses a duplicate
/// field name; unknown fields are skipped.
#[derive(Debug, Deserialize)]
pub(crate) struct RawManifest {
    updates: Option<Vec<RawUpdate>>,
    migrations: Option<Entries<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
struct RawUpdate {
    variant: Option<String>,
    arch: Option<String>,
    version: Option<String>,
    max_version: Option<String>,
    waves: Option<Entries<String>>,
    images: Option<RawImages>,
    chunk_indexes: Option<RawChunkIndexes>,
    // Our own optional additions go here and in `Update`, as
    // `#[serde(default, skip_serializing_if = "Option::is_none")]` fields, so that
    // Bottlerocket's parser (which ignores unknown fields) still reads our manifests.
}

#[derive(Debug, Deserialize)]
struct RawChunkIndexes {
    boot: Option<String>,
    root: Option<String>,
    hash: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawImages {
    boot: Option<String>,
    root: Option<String>,
    hash: Option<String>,
}

fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| Error::MissingField.at(field))
}

fn version(value: Option<String>, field: &str) -> Result<Version> {
    let value = required(value, field)?;
    Version::parse(&value).map_err(|source| Error::ParseVersion { value, source }.at(field))
}

fn target(value: Option<String>, field: &str) -> Result<TargetName> {
    TargetName::new(required(value, field)?).map_err(|e| e.at(field))
}

fn waves(entries: Entries<String>) -> Result<Waves> {
    let mut seen = BTreeMap::new();
    for (key, value) in entries.0 {
        let n = parse_digits(&key).ok_or_else(|| Error::WaveKeyNotInteger { key: key.clone() })?;
        let seed = Seed::new(n).map_err(|_| Error::WaveKeyOutOfRange { key: key.clone() })?;
        let start = value.parse().map_err(|source| Error::ParseWaveTime {
            key: key.clone(),
            value,
            source,
        })?;
        if seen.insert(seed, start).is_some() {
            return Err(Error::DuplicateWaveKey { key });
        }
    }
    Waves::new(seen)
}

fn update(raw: RawUpdate, at: &str) -> Result<Update> {
    let images = required(raw.images, &format!("{at}.images"))?;
    Ok(Update {
        variant: required(raw.variant, &format!("{at}.variant"))?,
        arch: required(raw.arch, &format!("{at}.arch"))?,
        version: version(raw.version, &format!("{at}.version"))?,
        max_version: version(raw.max_version, &format!("{at}.max_version"))?,
        waves: match raw.waves {
            Some(entries) => waves(entries).map_err(|e| e.at(format!("{at}.waves")))?,
            None => return Err(Error::MissingField.at(format!("{at}.waves"))),
        },
        images: Images {
            boot: target(images.boot, &format!("{at}.images.boot"))?,
            root: target(images.root, &format!("{at}.images.root"))?,
            hash: target(images.hash, &format!("{at}.images.hash"))?,
        },
        chunk_indexes: match raw.chunk_indexes {
            None => None,
            Some(raw) => {
                let name = |value: Option<String>, image: &str| {
                    value
                        .map(|v| {
                            TargetName::new(v)
                                .map_err(|e| e.at(format!("{at}.chunk_indexes.{image}")))
                        })
                        .transpose()
                };
                let indexes = ChunkIndexes {
                    boot: name(raw.boot, "boot")?,
                    root: name(raw.root, "root")?,
                    hash: name(raw.hash, "hash")?,
                };
                Some(indexes)
            }
        },
    })
}

/// Parses `(<from>, <to>)`, spaces around either version allowed.
fn migration_key(key: &str) -> Result<(Version, Version)> {
    let malformed = || Error::MalformedMigrationKey {
        key: key.to_string(),
    };
    let inner = key
        .trim()
        .strip_prefix('(')
        .and_then(|k| k.strip_suffix(')'))
        .ok_or_else(malformed)?;
    let (from, to) = inner.split_once(',').ok_or_else(malformed)?;
    let parse = |value: &str| {
        Version::parse(value.trim()).map_err(|source| Error::MigrationKeyVersion {
            key: key.to_string(),
            value: value.trim().to_string(),
            source,
        })
    };
    let (from, to) = (parse(from)?, parse(to)?);
    if from >= to {
        return Err(Error::MigrationKeyNotAscending {
            key: key.to_string(),
            from,
            to,
        });
    }
    Ok((from, to))
}

/// The ordered list of migrations, validated.
pub(crate) type MigrationMap = BTreeMap<(Version, Version), Vec<MigrationName>>;

fn migrations(entries: Entries<Vec<String>>) -> Result<MigrationMap> {
    let mut map = MigrationMap::new();
    for (key, names) in entries.0 {
        let (from, to) = migration_key(&key)?;
        let names = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| MigrationName::new(name).map_err(|e| e.at(format!("{key}[{i}]"))))
            .collect::<Result<Vec<_>>>()?;
        if map.contains_key(&(from.clone(), to.clone())) {
            return Err(Error::DuplicateMigrationKey { key, from, to });
        }
        map.insert((from, to), names);
    }
    Ok(map)
}

impl TryFrom<RawManifest> for Manifest {
    type Error = Error;

    fn try_from(raw: RawManifest) -> Result<Manifest> {
        let updates = required(raw.updates, "updates")?
            .into_iter()
            .enumerate()
            .map(|(i, raw)| update(raw, &format!("updates[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let migrations = match raw.migrations {
            Some(entries) => migrations(entries).map_err(|e| e.at("migrations"))?,
            None => return Err(Error::MissingField.at("migrations")),
        };
        Ok(Manifest::from_parts(updates, migrations))
    }
}

/// Writes the migrations map with Bottlerocket's `"(<from>, <to>)"` keys, sorted by (from, to).
pub(crate) fn serialize_migrations<S: Serializer>(
    map: &MigrationMap,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        map.iter()
            .map(|((from, to), names)| (format!("({from}, {to})"), names)),
    )
}

/// The serialised shape of a manifest (the model's fields are private).
#[derive(Serialize)]
pub(crate) struct WireManifest<'a> {
    pub(crate) updates: &'a [Update],
    #[serde(serialize_with = "serialize_migrations")]
    pub(crate) migrations: &'a MigrationMap,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Result<(Version, Version)> {
        migration_key(s)
    }

    #[test]
    fn migration_keys() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(key("(1.0.0, 1.1.0)").unwrap(), (v("1.0.0"), v("1.1.0")));
        assert_eq!(key("(1.0.0,1.1.0)").unwrap(), (v("1.0.0"), v("1.1.0")));
        assert_eq!(
            key(" ( 1.0.0 , 1.1.0 ) ").unwrap(),
            (v("1.0.0"), v("1.1.0"))
        );
        for bad in ["1.0.0, 1.1.0", "(1.0.0 1.1.0)", "(1.0.0, 1.1.0", "", "()"] {
            let err = key(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::MalformedMigrationKey { .. } | Error::MigrationKeyVersion { .. }
                ),
                "{bad}: {err}"
            );
        }
        assert!(matches!(
            key("(1.0, 1.1.0)").unwrap_err(),
            Error::MigrationKeyVersion { .. }
        ));
        assert!(matches!(
            key("(1.1.0, 1.0.0)").unwrap_err(),
            Error::MigrationKeyNotAscending { .. }
        ));
        assert!(matches!(
            key("(1.1.0, 1.1.0)").unwrap_err(),
            Error::MigrationKeyNotAscending { .. }
        ));
    }
}
