//! The server that answers from memory answers as `ServeDir` does: the same status, length,
//! range and bytes for whole files, single ranges, HEAD, and the requests it hands on (several
//! ranges, a range past the end, a missing file); a file replaced on disk is served new; faults
//! and the request log apply to its answers too.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use testsys::{Fault, HttpServer};

/// What a client sees of an answer: status, Content-Length, Content-Range, body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    length: Option<String>,
    range: Option<String>,
    body: Vec<u8>,
}

/// Asks `url` with curl and the extra `args` (a Range, `--head`).
fn ask(url: &str, args: &[&str]) -> Answer {
    let body = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-o"])
        .arg(body.path())
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?} {url} failed");
    let headers = String::from_utf8(out.stdout).unwrap();
    let mut lines = headers.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    let header = |name: &str| {
        headers.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    // A HEAD's output file holds the headers again (curl writes them there); it has no body.
    let head = args.contains(&"--head");
    Answer {
        status,
        length: header("content-length"),
        range: header("content-range"),
        body: if head {
            Vec::new()
        } else {
            std::fs::read(body.path()).unwrap()
        },
    }
}

fn tool_present() -> bool {
    test_tools::require_tool("curl").is_some()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    // Replaced, not rewritten in place, as a publish replaces a file.
    let staged = dir.join(format!(".{name}.new"));
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(staged, dir.join(name)).unwrap();
}

#[test]
fn answers_from_memory_are_the_answers_of_serve_dir() {
    if !tool_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(dir.path(), "image.lz4", &data);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let files = HttpServer::serve(dir.path()).unwrap();
    let memory = HttpServer::serve_from_memory(dir.path()).unwrap();

    let asks: [(&str, &[&str]); 11] = [
        ("image.lz4", &[]),
        ("image.lz4", &["-r", "3-9"]),
        ("image.lz4", &["-r", "0-0"]),
        ("image.lz4", &["-r", "4990-"]),
        ("image.lz4", &["-H", "Range: bytes=-5"]),
        ("image.lz4", &["-r", "4000-9999"]),
        ("image.lz4", &["-r", "6000-7000"]),
        ("image.lz4", &["-r", "1-2,4-5"]),
        ("image.lz4", &["--head"]),
        ("missing.lz4", &[]),
        ("../image.lz4", &["--path-as-is"]),
    ];
    for (path, args) in asks {
        let from_files = ask(&format!("{}{path}", files.url()), args);
        let from_memory = ask(&format!("{}{path}", memory.url()), args);
        assert_eq!(from_memory, from_files, "{path} {args:?}");
    }
    // The whole file, the five single ranges that hold a byte of it (one past the end is cut
    // to the end) and HEAD came from memory; the rest were handed on.
    assert_eq!(memory.answered_from_memory(), 7);
    assert_eq!(files.answered_from_memory(), 0);
    // What the comparison covers: a range and a whole file, with their bytes.
    let range = ask(&format!("{}image.lz4", memory.url()), &["-r", "3-9"]);
    assert_eq!(range.status, 206);
    assert_eq!(range.range.as_deref(), Some("bytes 3-9/5000"));
    assert_eq!(range.body, data[3..=9]);
    assert_eq!(ask(&format!("{}image.lz4", memory.url()), &[]).body, data);
}

#[test]
fn a_file_replaced_on_disk_is_served_new_from_memory() {
    if !tool_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "timestamp.json", b"{\"version\": 1}");
    let server = HttpServer::serve_from_memory(dir.path()).unwrap();
    let url = format!("{}timestamp.json", server.url());
    assert_eq!(ask(&url, &[]).body, b"{\"version\": 1}");
    write(dir.path(), "timestamp.json", b"{\"version\": 2}");
    assert_eq!(ask(&url, &[]).body, b"{\"version\": 2}");
    assert_eq!(ask(&url, &["-r", "12-12"]).body, b"2");
}

#[test]
fn faults_and_the_request_log_apply_to_answers_from_memory() {
    if !tool_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = vec![9u8; 3000];
    write(dir.path(), "chunks.bin", &data);
    let server = HttpServer::serve_from_memory(dir.path()).unwrap();
    let url = format!("{}chunks.bin", server.url());

    assert_eq!(ask(&url, &["-r", "100-299"]).body.len(), 200);
    server.inject("chunks.bin", Fault::NoRange, Some(1));
    let ignored = ask(&url, &["-r", "100-299"]);
    assert_eq!((ignored.status, ignored.body.len()), (200, 3000));
    server.inject("chunks.bin", Fault::Status(503), Some(1));
    assert_eq!(ask(&url, &[]).status, 503);

    let log = server.requests();
    let logged: Vec<(u16, u64)> = log.iter().map(|r| (r.status, r.body_bytes)).collect();
    assert_eq!(logged, [(206, 200), (200, 3000), (503, 0)]);
    assert_eq!(log[0].range.as_deref(), Some("bytes=100-299"));
}
