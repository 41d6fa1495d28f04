//! The conformance client against a repository that repo-tool publishes, as docs/publishing.md
//! walks through it: the Bottlerocket layout (metadata under `<variant>/<arch>/`, one shared
//! `targets/` directory of `<sha256>.<name>` files), a daily refresh, and a root rotation that
//! replaces the targets and snapshot key. Served over HTTP on loopback by testsys.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_tool(dir: &Path, args: &[&str]) {
    let out = Command::new(testsys::binary("repo-tools", "repo-tool"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "repo-tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo_tool_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(testsys::binary("repo-tools", "repo-tool"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn client(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tuf-conformance-client"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn version(md: &Path, role: &str) -> u64 {
    let bytes = std::fs::read(md.join(format!("{role}.json"))).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["signed"]["version"].as_u64().unwrap()
}

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
    for args in [
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
    ] {
        repo_tool(dir, args);
    }
    let imgs = images(dir, "1.0.0");
    let (boot, root, hash) = (
        imgs[0].to_str().unwrap(),
        imgs[1].to_str().unwrap(),
        imgs[2].to_str().unwrap(),
    );
    repo_tool(
        dir,
        &[
            "publish",
            "--repo",
            "repo",
            "--variant",
            "demo",
            "--arch",
            "x86_64",
            "--version",
            "1.0.0",
            "--boot-image",
            boot,
            "--root-image",
            root,
            "--hash-image",
            hash,
            "--root",
            "root.json",
            "--no-waves",
            "--key",
            "keys/publish.pem",
            "--key",
            "keys/timestamp.pem",
        ],
    );

    let server = testsys::HttpServer::serve(&dir.join("repo")).unwrap();
    let metadata_url = format!("{}demo/x86_64", server.url());
    let targets_url = format!("{}targets", server.url());
    let md = dir.join("client/metadata");
    let td = dir.join("client/targets");
    let (md_s, td_s) = (md.to_str().unwrap(), td.to_str().unwrap());
    let refresh = [
        "--metadata-url",
        &metadata_url,
        "--metadata-dir",
        md_s,
        "refresh",
    ];
    let download = |names: &[&str]| {
        let mut args = vec!["--metadata-url", &metadata_url, "--metadata-dir", md_s];
        for name in names {
            args.extend(["--target-name", name]);
        }
        args.extend([
            "--target-dir",
            td_s,
            "--target-base-url",
            &targets_url,
            "download",
        ]);
        client(&args)
    };

    assert_eq!(
        client(&["--metadata-dir", md_s, "init", "root.json"]).0,
        Some(1)
    );
    let trusted = dir.join("root.json");
    assert_eq!(
        client(&["--metadata-dir", md_s, "init", trusted.to_str().unwrap()]).0,
        Some(0)
    );
    let (code, err) = client(&refresh);
    assert_eq!(code, Some(0), "{err}");
    let names = [
        "manifest.json",
        "demo-x86_64-1.0.0-boot.ext4.lz4",
        "demo-x86_64-1.0.0-root.ext4.lz4",
        "demo-x86_64-1.0.0-root.verity.lz4",
    ];
    let (code, err) = download(&names);
    assert_eq!(code, Some(0), "{err}");
    for (name, image) in names[1..].iter().zip(&imgs) {
        assert_eq!(
            std::fs::read(td.join(name)).unwrap(),
            std::fs::read(image).unwrap()
        );
    }
    assert!(
        std::fs::read_to_string(td.join("manifest.json"))
            .unwrap()
            .contains("1.0.0")
    );

    // The daily refresh re-signs timestamp (and snapshot): the client follows.
    let before = version(&md, "timestamp");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // versions are UNIX seconds
    repo_tool(
        dir,
        &[
            "refresh",
            "--repo",
            "repo",
            "--variant",
            "demo",
            "--arch",
            "x86_64",
            "--key",
            "keys/publish.pem",
            "--key",
            "keys/timestamp.pem",
        ],
    );
    assert_eq!(client(&refresh).0, Some(0));
    assert!(version(&md, "timestamp") > before);

    // Root rotation (docs/publishing.md step 7): a new targets and snapshot key.
    std::fs::copy(
        dir.join("repo/demo/x86_64/1.root.json"),
        dir.join("root-2.json"),
    )
    .unwrap();
    let old_publish = repo_tool_out(dir, &["key", "id", "keys/publish.pem"]);
    for args in [
        &["key", "generate", "--out", "keys/publish-2.pem"][..],
        &["root", "set-version", "root-2.json", "2"],
        &["root", "expire", "root-2.json", "52 weeks"],
        &[
            "root",
            "add-key",
            "root-2.json",
            "--key",
            "keys/publish-2.pem",
            "--role",
            "targets",
            "--role",
            "snapshot",
        ],
        &[
            "root",
            "remove-key",
            "root-2.json",
            "--key-id",
            &old_publish,
        ],
        &[
            "root",
            "sign",
            "root-2.json",
            "--key",
            "keys/root.pem",
            "--cross-sign",
            "repo/demo/x86_64/1.root.json",
        ],
        &[
            "root",
            "rotate",
            "--repo",
            "repo",
            "--variant",
            "demo",
            "--arch",
            "x86_64",
            "--new-root",
            "root-2.json",
            "--key",
            "keys/publish-2.pem",
            "--key",
            "keys/timestamp.pem",
        ],
    ] {
        repo_tool(dir, args);
    }
    server.clear_requests();
    let (code, err) = download(&names);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(version(&md, "root"), 2);
    assert_eq!(
        std::fs::read(md.join("root.json")).unwrap(),
        std::fs::read(dir.join("repo/demo/x86_64/2.root.json")).unwrap()
    );
    // The images were already there with matching hashes: no target was fetched again.
    let requests: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !requests.iter().any(|p| p.starts_with("/targets/")),
        "{requests:?}"
    );
    let mut files: Vec<String> = std::fs::read_dir(&md)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
}
