//! The conformance client against a repository that repo-tool publishes, as docs/publishing.md
//! walks through it: the Bottlerocket layout (metadata under `<variant>/<arch>/`, one shared
//! `targets/` directory of `<sha256>.<name>` files), a daily refresh, and a root rotation that
//! replaces the targets and snapshot key. Served over HTTP on loopback by testsys.

#![allow(clippy::unwrap_used)]

mod common;

use common::Client;
use std::path::{Path, PathBuf};
use test_tools::tuf::{SIGN, on_repo, publish_args, rotate_root, strs};

/// Stand-in images: repo-tool treats them as opaque lz4 targets.
fn images(dir: &Path, version: &str) -> Vec<PathBuf> {
    let out = dir.join("images").join(version);
    std::fs::create_dir_all(&out).unwrap();
    ["boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"]
        .iter()
        .map(|name| {
            let data = format!("{name} of {version}\n").repeat(100);
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            std::io::Write::write_all(&mut enc, data.as_bytes()).unwrap();
            std::fs::write(out.join(name), enc.finish().unwrap()).unwrap();
            out.join(name)
        })
        .collect()
}

#[test]
fn a_repo_tool_repository_is_refreshed_downloaded_and_followed_through_a_root_rotation() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let repo_tool = testsys::binary("repo-tools", "repo-tool");
    test_tools::run_each_in(
        &repo_tool,
        dir,
        &[
            &["key", "generate", "--out", "keys/root.pem"][..],
            &["key", "generate", "--out", "keys/publish.pem"],
            &["key", "generate", "--out", "keys/timestamp.pem"],
            &["root", "init", "root.json", "--expires", "52 weeks"],
            &[
                "root",
                "add-key",
                "root.json",
                "--key",
                "keys/root.pem",
                "--role",
                "root",
            ],
            &[
                "root",
                "add-key",
                "root.json",
                "--key",
                "keys/publish.pem",
                "--role",
                "targets",
                "--role",
                "snapshot",
            ],
            &[
                "root",
                "add-key",
                "root.json",
                "--key",
                "keys/timestamp.pem",
                "--role",
                "timestamp",
            ],
            &["root", "sign", "root.json", "--key", "keys/root.pem"],
        ],
    );
    let imgs = images(dir, "1.0.0");
    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    test_tools::run_in(&repo_tool, dir, &strs(&publish_args("1.0.0", &extra)));

    let server = testsys::HttpServer::serve(&dir.join("repo")).unwrap();
    let client = Client::new(
        dir,
        format!("{}demo/x86_64", server.url()),
        format!("{}targets", server.url()),
    );

    assert_eq!(client.init(Path::new("root.json")).code, Some(1));
    client.init(&dir.join("root.json")).ok();
    client.refresh().ok();
    let names = [
        "manifest.json",
        "demo-x86_64-1.0.0-boot.ext4.lz4",
        "demo-x86_64-1.0.0-root.ext4.lz4",
        "demo-x86_64-1.0.0-root.verity.lz4",
    ];
    client.download(&names).ok();
    for (name, image) in names[1..].iter().zip(&imgs) {
        assert_eq!(
            std::fs::read(client.target_dir.join(name)).unwrap(),
            std::fs::read(image).unwrap()
        );
    }
    assert!(
        std::fs::read_to_string(client.target_dir.join("manifest.json"))
            .unwrap()
            .contains("1.0.0")
    );

    // The daily refresh re-signs timestamp (and snapshot): the client follows.
    let before = client.version("timestamp").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // versions are UNIX seconds
    test_tools::run_in(&repo_tool, dir, &on_repo(&["refresh"], &SIGN));
    client.refresh().ok();
    assert!(client.version("timestamp").unwrap() > before);

    // Root rotation (docs/publishing.md step 7): a new targets and snapshot key.
    rotate_root(&repo_tool, dir, &["keys/root.pem"]);
    server.clear_requests();
    client.download(&names).ok();
    assert_eq!(client.version("root"), Some(2));
    assert_eq!(
        std::fs::read(client.metadata_dir.join("root.json")).unwrap(),
        std::fs::read(dir.join("repo/demo/x86_64/2.root.json")).unwrap()
    );
    // The images were already there with matching hashes: no target was fetched again.
    let requests: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !requests.iter().any(|p| p.starts_with("/targets/")),
        "{requests:?}"
    );
    assert_eq!(
        client.metadata_files(),
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
}
