//! root.json: create, list keys and thresholds per role, set expiry and version, sign (with
//! several keys, and cross-signed by the previous root when rotating).

use crate::error::{self, Result};
use crate::keys::{self, PemKeySource};
use crate::time::whole_seconds;
use aws_lc_rs::rand::SystemRandom;
use snafu::{OptionExt, ResultExt, ensure};
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use tough::editor::signed::SignedRole;
use tough::key_source::KeySource;
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Signed};

/// The top-level roles, in the order root.json lists them.
pub const ROLES: [RoleType; 4] = [
    RoleType::Root,
    RoleType::Snapshot,
    RoleType::Targets,
    RoleType::Timestamp,
];

/// Parses a role name given on the command line.
pub fn parse_role(name: &str) -> Result<RoleType> {
    ROLES
        .into_iter()
        .find(|r| r.to_string() == name)
        .context(error::UnknownRoleSnafu { role: name })
}

/// Reads a root file.
pub fn load(path: &Path) -> Result<Signed<Root>> {
    let bytes = std::fs::read(path).context(error::ReadFileSnafu { path })?;
    serde_json::from_slice(&bytes).context(error::ParseJsonSnafu { path })
}

fn save(path: &Path, root: &Signed<Root>) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(root).context(error::SerializeJsonSnafu {
        what: path.display().to_string(),
    })?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(path, &bytes)
}

/// Edits an unsigned copy of a root: any change voids the signatures it had.
fn edit(path: &Path, change: impl FnOnce(&mut Root) -> Result<()>) -> Result<()> {
    let mut root = load(path)?;
    change(&mut root.signed)?;
    root.signatures.clear();
    save(path, &root)
}

/// Writes a new, unsigned root.json (version 1, consistent snapshots on) that expires at
/// `expires`; keys are added with [`add_key`].
pub fn init(path: &Path, expires: jiff::Timestamp) -> Result<()> {
    ensure!(!path.exists(), error::ExistsSnafu { path });
    let one = NonZeroU64::MIN;
    let roles = ROLES
        .into_iter()
        .map(|role| {
            let keys = RoleKeys {
                keyids: Vec::new(),
                threshold: one,
                _extra: HashMap::new(),
            };
            (role, keys)
        })
        .collect();
    let root = Root {
        spec_version: "1.0.0".to_string(),
        consistent_snapshot: true,
        version: one,
        expires: whole_seconds(expires),
        keys: HashMap::new(),
        roles,
        _extra: HashMap::new(),
    };
    save(
        path,
        &Signed {
            signed: root,
            signatures: Vec::new(),
        },
    )
}

/// Adds the public half of `key` to root's key list and to each of `roles`; returns its key id.
pub fn add_key(path: &Path, key: &Path, roles: &[RoleType]) -> Result<String> {
    let public = keys::public_key(key)?;
    let id = keys::key_id_decoded(key)?;
    edit(path, |root| {
        root.keys.insert(id.clone(), public);
        for role in roles {
            let keys = root.roles.entry(*role).or_insert_with(|| RoleKeys {
                keyids: Vec::new(),
                threshold: NonZeroU64::MIN,
                _extra: HashMap::new(),
            });
            if !keys.keyids.contains(&id) {
                keys.keyids.push(id.clone());
            }
        }
        Ok(())
    })?;
    Ok(keys::hex_id(&id))
}

/// Removes a key (by key id in hex) from `roles`, or from every role and the key list when
/// `roles` is empty. Refuses, changing nothing, an id the root holds neither in its key list nor
/// in any role.
pub fn remove_key(path: &Path, keyid: &str, roles: &[RoleType]) -> Result<()> {
    edit(path, |root| {
        let held = root.keys.keys().any(|id| keys::hex_id(id) == keyid)
            || root
                .roles
                .values()
                .any(|k| k.keyids.iter().any(|id| keys::hex_id(id) == keyid));
        ensure!(held, error::NoSuchKeySnafu { path, keyid });
        let every = roles.is_empty();
        for (role, keys) in &mut root.roles {
            if every || roles.contains(role) {
                keys.keyids.retain(|id| keys::hex_id(id) != keyid);
            }
        }
        if every {
            root.keys.retain(|id, _| keys::hex_id(id) != keyid);
        }
        Ok(())
    })
}

/// Sets how many signatures `role` needs.
pub fn set_threshold(path: &Path, role: RoleType, threshold: u64) -> Result<()> {
    let threshold = NonZeroU64::new(threshold).context(error::ZeroThresholdSnafu {
        role: role.to_string(),
    })?;
    edit(path, |root| {
        if let Some(keys) = root.roles.get_mut(&role) {
            keys.threshold = threshold;
        }
        Ok(())
    })
}

/// Sets when root expires.
pub fn set_expires(path: &Path, expires: jiff::Timestamp) -> Result<()> {
    edit(path, |root| {
        root.expires = whole_seconds(expires);
        Ok(())
    })
}

/// Sets root's version (a rotation writes version N+1).
pub fn set_version(path: &Path, version: NonZeroU64) -> Result<()> {
    edit(path, |root| {
        root.version = version;
        Ok(())
    })
}

/// Signs root with every given key that root lists for its root role and, when `previous` is
/// given (a rotation), with every given key the previous root lists for its root role. Refuses
/// unless the new root's threshold, and the previous root's, are met.
pub async fn sign(path: &Path, key_files: &[PathBuf], previous: Option<&Path>) -> Result<()> {
    let root = load(path)?;
    let previous = previous.map(load).transpose()?;
    check_keys_known(&root, previous.as_ref(), key_files)?;
    let signed = sign_root(&root.signed, previous.as_ref(), key_files).await?;
    check_threshold(&root.signed, &signed, "the new root")?;
    if let Some(previous) = &previous {
        check_threshold(&previous.signed, &signed, "the previous root")?;
    }
    save(path, &signed)
}

async fn sign_root(
    root: &Root,
    previous: Option<&Signed<Root>>,
    key_files: &[PathBuf],
) -> Result<Signed<Root>> {
    let sources: Vec<Box<dyn KeySource>> = keys::key_sources(key_files);
    let rng = SystemRandom::new();
    let tough_err = |action: &str| error::ToughSnafu {
        action: action.to_string(),
    };
    let mut role = SignedRole::new(root.clone(), &KeyHolder::Root(root.clone()), &sources, &rng)
        .await
        .with_context(|_| tough_err("sign root.json"))?;
    if let Some(previous) = previous {
        let cross = SignedRole::new(
            root.clone(),
            &KeyHolder::Root(previous.signed.clone()),
            &sources,
            &rng,
        )
        .await
        .with_context(|_| tough_err("cross-sign root.json with the previous root's keys"))?;
        role = role
            .add_old_signatures(cross.signed().signatures.clone())
            .with_context(|_| tough_err("merge the previous root's signatures"))?;
    }
    Ok(role.signed().clone())
}

/// Every key given must be in the root (or the previous root) for some role; a key that is not
/// is a mistake the operator should hear about rather than a silent no-op.
fn check_keys_known(
    root: &Signed<Root>,
    previous: Option<&Signed<Root>>,
    key_files: &[PathBuf],
) -> Result<()> {
    for path in key_files {
        let id = keys::key_id_decoded(path)?;
        let known = std::iter::once(root)
            .chain(previous)
            .any(|r| r.signed.roles.values().any(|k| k.keyids.contains(&id)));
        ensure!(
            known,
            error::KeyNotInRootSnafu {
                path,
                keyid: keys::hex_id(&id),
            }
        );
    }
    Ok(())
}

/// Checks that `rules` (a root) accepts the signatures on `signed` for the root role.
pub fn check_threshold(rules: &Root, signed: &Signed<Root>, which: &str) -> Result<()> {
    let threshold = rules
        .roles
        .get(&RoleType::Root)
        .map_or(1, |k| k.threshold.get());
    if rules.verify_role(signed).is_ok() {
        return Ok(());
    }
    let valid = count_valid(rules, signed);
    error::ThresholdSnafu {
        role: "root",
        which,
        valid,
        threshold,
    }
    .fail()
}

fn count_valid(rules: &Root, signed: &Signed<Root>) -> u64 {
    // verify_role reports only pass or fail; count by verifying each signature alone.
    signed
        .signatures
        .iter()
        .filter(|sig| {
            let one = Signed {
                signed: signed.signed.clone(),
                signatures: vec![(*sig).clone()],
            };
            let mut single = rules.clone();
            if let Some(keys) = single.roles.get_mut(&RoleType::Root) {
                keys.threshold = NonZeroU64::MIN;
            }
            single.verify_role(&one).is_ok()
        })
        .count() as u64
}

/// A short human description of a root: version, expiry, keys and thresholds per role.
pub fn describe(root: &Signed<Root>) -> String {
    let mut out = format!(
        "version {}, expires {}, consistent_snapshot {}, {} signature(s)\n",
        root.signed.version,
        root.signed.expires,
        root.signed.consistent_snapshot,
        root.signatures.len()
    );
    for role in ROLES {
        if let Some(keys) = root.signed.roles.get(&role) {
            let ids: Vec<String> = keys.keyids.iter().map(keys::hex_id).collect();
            out.push_str(&format!(
                "  {role:<9} threshold {} of {}: {}\n",
                keys.threshold,
                ids.len(),
                ids.iter()
                    .map(|id| &id[..12.min(id.len())])
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out
}

/// Signers of key files, for callers that need tough's `Sign` directly.
pub fn signer(path: &Path) -> Result<Box<dyn tough::sign::Sign>> {
    PemKeySource {
        path: path.to_path_buf(),
    }
    .signer()
}
