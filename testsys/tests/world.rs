//! The test world works end to end: real images are built and published, served over HTTP on
//! loopback with Range support and injectable faults, and a node directory boots set A.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use testsys::{Fault, HttpServer, NodeSpec, PublishOptions, TestNode, TestRepo};

fn tools_present() -> bool {
    ["mkfs.ext4", "debugfs", "curl"]
        .iter()
        .all(|t| test_tools::require_tool(t).is_some())
}

fn curl(args: &[&str]) -> (bool, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), out.stdout)
}

#[test]
fn a_published_release_is_served_and_a_node_boots_it_from_set_a() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let repo = TestRepo::create(&work.path().join("publisher"), "demo", "x86_64").unwrap();
    let first = repo
        .release(
            "1.0.0",
            &[("etc/motd", b"one\n")],
            &PublishOptions::default(),
        )
        .unwrap();
    repo.release(
        "1.1.0",
        &[("etc/motd", b"two\n")],
        &PublishOptions::default(),
    )
    .unwrap();
    let server = HttpServer::serve(&repo.base()).unwrap();
    let (metadata, _targets) = repo.urls(&server.url());

    // The repository is what a client sees over HTTP: timestamp.json names a snapshot there.
    let (ok, body) = curl(&[&format!("{metadata}timestamp.json")]);
    assert!(ok);
    let timestamp: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let snapshot_version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let (ok, _) = curl(&["-f", &format!("{metadata}{snapshot_version}.snapshot.json")]);
    assert!(ok, "the snapshot named by timestamp.json is served");

    // Range requests are answered (chunked installs depend on them).
    let target = std::fs::read_dir(repo.base().join("targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("1.1.0-root.ext4.lz4"))
        .unwrap();
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let whole = std::fs::read(&target).unwrap();
    let url = format!("{}targets/{name}", server.url());
    let (ok, part) = curl(&["-f", "-r", "100-199", &url]);
    assert!(ok);
    assert_eq!(part, whole[100..200]);

    // Faults: a dropped connection, an error status, Range switched off, a replaced body.
    server.inject(&name, Fault::DropAfter(1000), Some(1));
    let (ok, part) = curl(&["-f", &url]);
    assert!(!ok, "a dropped connection is an error for the client");
    assert!(
        part.len() < whole.len(),
        "got {} of {} bytes",
        part.len(),
        whole.len()
    );
    let (ok, body) = curl(&["-f", &url]);
    assert!(ok && body == whole, "the fault applied once only");
    server.inject(&name, Fault::Status(503), Some(1));
    assert!(!curl(&["-f", &url]).0);
    server.inject(&name, Fault::NoRange, Some(1));
    assert_eq!(curl(&["-f", "-r", "0-9", &url]).1.len(), whole.len());
    server.inject(&name, Fault::Replace(b"evil".to_vec()), Some(1));
    assert_eq!(curl(&["-f", &url]).1, b"evil");
    server.inject(&name, Fault::Endless, Some(1));
    let (_, endless) = curl(&["--max-filesize", "100000000", "--max-time", "1", &url]);
    assert!(endless.len() > whole.len(), "endless data keeps coming");
    // A pause holds the transfer after 1000 bytes until the test resumes it.
    server.inject(&name, Fault::PauseAfter(1000), Some(1));
    let paused = std::thread::spawn({
        let url = url.clone();
        move || curl(&["-f", &url])
    });
    while server.paused() == 0 {
        assert!(!paused.is_finished(), "the transfer ended without pausing");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!paused.is_finished());
    server.resume();
    let (ok, body) = paused.join().unwrap();
    assert!(ok && body == whole, "the paused transfer completes whole");
    assert_eq!(server.paused(), 0);
    let logged = server.requests();
    assert!(
        logged
            .iter()
            .any(|r| r.range.as_deref() == Some("bytes=100-199") && r.status == 206)
    );
    assert!(logged.iter().any(|r| r.status == 503));

    // A node boots 1.0.0 from set A: its os-release came from the ROOT on the disk.
    let spec = NodeSpec {
        urls: Some(repo.urls(&server.url())),
        seed: Some(42),
        ..NodeSpec::default()
    };
    let node = TestNode::create(&work.path().join("node"), &first, &spec).unwrap();
    let os_release = std::fs::read_to_string(node.sysroot.join("etc/os-release")).unwrap();
    assert!(os_release.contains("VERSION_ID=1.0.0"), "{os_release}");
    assert_eq!(
        std::fs::read(node.sysroot.join("usr/share/updog/root.json")).unwrap(),
        std::fs::read(&repo.root_json).unwrap()
    );
    let disk = node.signpost().unwrap();
    let a = disk.flags(signpost::SetId::A);
    let b = disk.flags(signpost::SetId::B);
    assert!(a.is_bootable() && !b.is_bootable());
    let root = node
        .read_partition(signpost::SetId::A, "root", first.images.root.size)
        .unwrap();
    assert_eq!(root, std::fs::read(&first.images.root.path).unwrap());
    let toml = std::fs::read_to_string(node.sysroot.join("etc/updog.toml")).unwrap();
    assert!(toml.contains(&metadata) && toml.contains("seed = 42"));
}
