//! The attack and fault catalogue: each attack is refused with a one-line error, the inactive set
//! is left unbootable (priority 0, tries 0), or as it was when the refusal comes before it is
//! cleared, and the active set's partitions and GPT entries are byte-for-byte unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use testsys::{Fault, PublishOptions};
use tough::schema::RoleType;

const SIGNED_ROLES: [RoleType; 3] = [RoleType::Timestamp, RoleType::Snapshot, RoleType::Targets];

#[test]
fn a_tampered_image_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    world.serve_edited("1.1.0-root.ext4.lz4", |bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
    });
    assert_install_refused(&world, &["1.1.0-root.ext4.lz4"]);
}

#[test]
fn a_truncated_image_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    world.serve_edited("1.1.0-hash.verity.lz4", |bytes| {
        bytes.truncate(bytes.len() / 2)
    });
    assert_install_refused(&world, &["1.1.0-hash.verity.lz4"]);
}

#[test]
fn endless_data_is_cut_at_the_signed_length() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    world.fault_on_root(Fault::Endless, None);
    assert_install_refused(&world, &["1.1.0-root.ext4.lz4"]);
    world.server.clear_faults();
    world.server.inject("manifest.json", Fault::Endless, None);
    let line = assert_install_refused(&world, &["manifest.json"]);
    assert!(line.contains("max") || line.contains("size"), "{line}");
}

#[test]
fn an_expired_timestamp_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let built = world.repo.build("1.1.0", &[]).unwrap();
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let options = PublishOptions {
        timestamp_expires: Some(past),
        ..PublishOptions::default()
    };
    world.repo.publish(&built, &options).unwrap();
    let line = assert_install_refused(&world, &["Failed to load the TUF repository"]);
    assert!(line.to_lowercase().contains("expired"), "{line}");
}

#[test]
fn a_rolled_back_repository_is_refused_across_runs() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let old = world.save_repo("old-repo");
    world.release("1.1.0");
    assert_eq!(world.updog(&["check-update"]).status.code(), Some(0));
    let floor = world.trusted_state_bytes();
    // The repository goes back to its state before 1.1.0: older timestamp, snapshot, targets.
    world.serve_copy(&old);
    assert_install_refused(&world, &["Failed to"]);
    // Even with tough's datastore gone, our floor refuses it.
    std::fs::remove_dir_all(world.node.sysroot.join("var/lib/updog/tuf")).unwrap();
    assert_install_refused(&world, &["timestamp version", "below version", "rollback"]);
    assert_eq!(
        world.trusted_state_bytes(),
        floor,
        "the floor never moves back"
    );
}

#[test]
fn a_repository_that_stops_serving_the_newest_root_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let old = world.save_repo("old-repo");
    rotate_root(&world, &SIGNED_ROLES, "rotated");
    assert_eq!(world.updog(&["check-update"]).status.code(), Some(3));
    world.serve_copy(&old);
    assert_install_refused(&world, &["root version 1 is below version 2"]);
}

#[test]
fn a_rotated_root_recovers_from_a_fast_forward_attack() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let before_attack = world.save_repo("before-attack");
    // An attacker with the timestamp, snapshot and targets key signs versions ten years ahead.
    let second = world
        .repo
        .build("1.1.0", &[("etc/motd", b"two\n")])
        .unwrap();
    let future = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 3650);
    publish_at(
        &world,
        &second,
        std::slice::from_ref(&world.repo.key),
        future,
    );
    assert_eq!(world.updog(&["check-update"]).status.code(), Some(0));
    // The publisher takes the repository back and publishes normally: versions are lower now.
    world.serve_copy(&before_attack);
    world.publish(&second);
    assert_install_refused(&world, &["Failed to"]);
    // Rotating the compromised keys lets the node accept the lower versions, as TUF requires.
    rotate_root(&world, &SIGNED_ROLES, "recovery");
    let out = world.updog(&["update-image", "--progress", "none"]);
    assert_eq!(ok(&out).trim(), "staged 1.1.0 in set B");
    let state = world.trusted_state();
    assert_eq!(state.root, 2);
    assert!(state.timestamp < future.as_second() as u64);
}

#[test]
fn metadata_signed_by_a_key_not_in_root_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    let evil =
        testsys::TestRepo::create(&world.work.path().join("evil"), "demo", "x86_64").unwrap();
    evil.publish(&world.first, &PublishOptions::default())
        .unwrap();
    std::fs::copy(
        evil.repo_dir().metadata_dir().join("timestamp.json"),
        world.metadata_dir().join("timestamp.json"),
    )
    .unwrap();
    assert_install_refused(&world, &["Failed to load the TUF repository", "timestamp"]);
}

#[test]
fn a_root_without_the_previous_roots_threshold_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    // 2.root.json hands the root role to a new key and is signed by that key alone.
    let key = world.work.path().join("usurper.pem");
    repo_tools::keys::generate(repo_tools::keys::KeyType::Ed25519, &key).unwrap();
    let forged = world.work.path().join("2.root.json");
    std::fs::copy(&world.repo.root_json, &forged).unwrap();
    let old_id = repo_tools::keys::key_id(&world.repo.key).unwrap();
    repo_tools::root::remove_key(&forged, &old_id, &[RoleType::Root]).unwrap();
    repo_tools::root::add_key(&forged, &key, &[RoleType::Root]).unwrap();
    repo_tools::root::set_version(&forged, std::num::NonZeroU64::new(2).unwrap()).unwrap();
    block_on(repo_tools::root::sign(
        &forged,
        std::slice::from_ref(&key),
        None,
    ))
    .unwrap();
    std::fs::copy(&forged, world.metadata_dir().join("2.root.json")).unwrap();
    assert_install_refused(&world, &["Failed to load the TUF repository", "threshold"]);
}

#[test]
fn a_snapshot_from_another_version_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let snapshot_of = |world: &World| {
        let ts: serde_json::Value = serde_json::from_slice(
            &std::fs::read(world.metadata_dir().join("timestamp.json")).unwrap(),
        )
        .unwrap();
        ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap()
    };
    let old_version = snapshot_of(&world);
    world.release("1.1.0");
    let new_version = snapshot_of(&world);
    assert_ne!(old_version, new_version);
    let old = std::fs::read(
        world
            .metadata_dir()
            .join(format!("{old_version}.snapshot.json")),
    )
    .unwrap();
    world.server.inject(
        &format!("/{new_version}.snapshot.json"),
        Fault::Replace(old),
        None,
    );
    assert_install_refused(&world, &["Failed to load the TUF repository", "snapshot"]);
}

#[test]
fn a_manifest_naming_a_target_not_in_targets_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let images = |name: &str| update_metadata::TargetName::new(name).unwrap();
    block_on(async {
        let repo_dir = world.repo.repo_dir();
        let (mut editor, previous) = repo_dir.editor(Some(&world.repo.root_json)).await.unwrap();
        let mut manifest = repo_tools::publish::load_manifest(previous.as_ref())
            .await
            .unwrap();
        let first = manifest.updates()[0].images.clone();
        let update = update_metadata::Update::new(
            "demo",
            "x86_64",
            "1.1.0".parse().unwrap(),
            update_metadata::Images::new(
                first.boot.clone(),
                images("demo-x86_64-1.1.0-root.ext4.lz4"),
                first.hash.clone(),
            ),
        );
        manifest.add_update(update).unwrap();
        manifest
            .add_migration(
                "1.0.0".parse().unwrap(),
                "1.1.0".parse().unwrap(),
                Vec::new(),
            )
            .unwrap();
        let file = world.work.path().join("manifest.json");
        std::fs::write(&file, manifest.to_json().unwrap()).unwrap();
        let (name, target) = repo_dir
            .add_target_file(&file, "manifest.json")
            .await
            .unwrap();
        editor.add_target(name, target).unwrap();
        let now = repo_tools::time::now();
        repo_tools::sign::sign_and_commit(
            &repo_dir,
            editor,
            previous.as_ref(),
            None,
            std::slice::from_ref(&world.repo.key),
            repo_tools::sign::Expiries::defaults(now),
            now,
        )
        .await
        .unwrap();
    });
    assert_install_refused(
        &world,
        &[
            "Failed to find target 'demo-x86_64-1.1.0-root.ext4.lz4' in the repository's signed targets",
        ],
    );
}

#[test]
fn a_decompression_bomb_is_refused_at_the_partitions_end() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let bomb = world.work.path().join("bomb.lz4");
    lz4_file(std::io::repeat(0).take(256 << 20), &bomb);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 4 << 20);
    let release = with_images(&world.first, "1.1.0", None, Some(&bomb), None);
    world.publish(&release);
    assert_install_refused(&world, &["decompresses to more than the partition's"]);
}

#[test]
fn an_image_larger_than_its_partition_is_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let mut spec = image_builder::ReleaseSpec::new(
        "1.1.0".parse().unwrap(),
        "demo",
        "x86_64",
        std::fs::read(&world.repo.root_json).unwrap(),
    );
    spec.root_size = Some(40 << 20); // ROOT partitions hold 32 MiB.
    let images = image_builder::build_release(&spec, &world.work.path().join("big")).unwrap();
    let release = testsys::BuiltRelease {
        version: "1.1.0".parse().unwrap(),
        images,
    };
    world.publish(&release);
    assert_install_refused(&world, &["1.1.0-root.ext4.lz4", "BOTTLEROCKET-ROOT-B"]);
}

#[test]
fn a_release_whose_hash_image_is_another_releases_is_refused_after_writing() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let second = world
        .repo
        .build("1.1.0", &[("etc/motd", b"two\n")])
        .unwrap();
    let third = world
        .repo
        .build("1.2.0", &[("etc/motd", b"three\n")])
        .unwrap();
    let wrong = with_images(
        &second,
        "1.1.0",
        None,
        None,
        Some(&third.images.hash.lz4_path),
    );
    world.publish(&wrong);
    assert_install_refused(&world, &["BOTTLEROCKET-ROOT-B", "ROOT does not match HASH"]);
}

#[test]
fn a_connection_dropped_mid_body_is_resumed_once_and_refused_when_it_always_drops() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let second = world.release("1.1.0");
    let root = world.target_file("1.1.0-root.ext4.lz4");
    let name = world.fault_on_root(Fault::DropAfter(5000), Some(1));
    ok(&world.updog(&["update-image", "--progress", "none"]));
    let resumed = requests_for(&world.server, &name)
        .iter()
        .any(|r| r.range.is_some() && r.status == 206);
    assert!(
        resumed,
        "the download resumed with a Range request ({} bytes): {:?}",
        std::fs::metadata(&root).unwrap().len(),
        world.server.requests()
    );
    assert_installed(&world.node, &second);

    // Always dropped: a clear error after the retries, and set B unbootable again.
    world.server.inject(&name, Fault::DropAfter(1000), None);
    assert_install_refused(&world, &[&name, "tries"]);
}

#[test]
fn a_trickling_transfer_is_cut_off_below_the_minimum_rate_and_refused() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    // Every request for ROOT, resumed ones too, trickles.
    let (name, _) = assert_trickle_refused(&world, "1.1.0-root.ext4.lz4");
    // Each cut-off was resumed from the byte reached, as a dropped connection is.
    let resumed: Vec<(u64, Option<u64>)> = requests_for(&world.server, &name)
        .iter()
        .filter_map(testsys::LoggedRequest::range_bounds)
        .collect();
    assert_eq!(resumed.len(), 3, "{resumed:?}");
    for &(from, to) in &resumed {
        assert!(from > 4000 && to.is_none(), "{resumed:?}");
    }
}

use std::io::Read as _;

#[test]
fn a_tampered_migration_is_refused_before_the_staged_set_is_cleared() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let staged = world.release("1.1.0");
    ok(&world.updog(&["update-image", "--progress", "none"]));
    assert_installed(&world.node, &staged);
    // 1.2.0 comes with a migration, whose file on the server is then changed.
    let migration = world.work.path().join("motd.json");
    let doc = r#"{"operations": [{"op": "add", "key": "motd.text", "value": "hello"}]}"#;
    std::fs::write(&migration, doc).unwrap();
    let built = world.repo.build("1.2.0", &[]).unwrap();
    let options = PublishOptions {
        migrations: vec![migration],
        ..PublishOptions::default()
    };
    world.repo.publish(&built, &options).unwrap();
    let served = world.target_file("migrate_v1.2.0_motd.json.lz4");
    let mut bytes = std::fs::read(&served).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&served, bytes).unwrap();

    // The cache comes before the inactive set is cleared: 1.1.0 is still staged there, whole.
    assert_refused_with(
        &world,
        &[
            "Failed to cache the repository",
            "migrate_v1.2.0_motd.json.lz4",
        ],
        |node| assert_installed(node, &staged),
        || world.updog(&["update-image", "--progress", "none"]),
    );
}
