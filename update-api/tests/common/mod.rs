//! Shared helpers for the update API's integration tests: a published repository served on
//! loopback, a node directory booted from 1.0.0 in set A, the real `update-api` binary started
//! on it, and the real `apiclient` binary.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use signpost::SetId;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use testsys::Fault;
use update_api::{UpdateState, UpdateStatus};

pub use testsys::{block_on, tools_present};

testsys::served_world! {
    /// A repository with 1.0.0 published, a server, and a node booted from 1.0.0 in set A
    /// (`testsys::ServedNode`, seed 42), with the API's own helpers.
    pub struct World;
}

impl World {
    /// Makes the download of `version`'s root image stall for `secs` after 4000 bytes.
    pub fn stall_root(&self, version: &str, secs: u64) {
        self.inject_target(
            &format!("{version}-root.ext4.lz4"),
            Fault::StallAfter(4000, Duration::from_secs(secs)),
            None,
        )
        .unwrap();
    }

    /// Starts the API server on the node.
    pub fn api(&self) -> ApiServer {
        ApiServer::start(&self.node.sysroot)
    }

    /// Runs apiclient against the node.
    pub fn apiclient(&self, args: &[&str]) -> Output {
        apiclient(&self.node.sysroot, args)
    }

    /// Appends `reboot_command` to updog.toml: a script that records the request in `file`.
    pub fn record_reboots(&self) -> PathBuf {
        let marker = self.work.path().join("rebooted");
        let script = self.work.path().join("reboot.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\n", marker.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = self.node.sysroot.join("etc/updog.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "reboot_command = [\"{}\", \"now\"]\n",
            script.display()
        ));
        std::fs::write(&config, text).unwrap();
        marker
    }

    /// The flags of set B: (priority, tries, successful).
    pub fn set_b(&self) -> (u8, u8, bool) {
        let f = self.node.signpost().unwrap().flags(SetId::B);
        (f.priority.get(), f.tries_left.get(), f.successful)
    }
}

/// A running `update-api` process.
pub struct ApiServer {
    pub child: Option<Child>,
    pub socket: PathBuf,
    pub sysroot: PathBuf,
}

impl ApiServer {
    /// Starts `update-api --sysroot` and waits until its socket answers.
    pub fn start(sysroot: &Path) -> ApiServer {
        let socket = sysroot.join("run/api.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_update-api"))
            .arg("--sysroot")
            .arg(sysroot)
            .env_remove("RUST_LOG")
            // Longer than any stall or pause a test injects: those must not end in a retry.
            .env("UPDOG_READ_TIMEOUT_MS", "600000")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let server = ApiServer {
            child: Some(child),
            socket,
            sysroot: sysroot.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if server.socket.exists()
                && std::os::unix::net::UnixStream::connect(&server.socket).is_ok()
            {
                return server;
            }
            assert!(Instant::now() < deadline, "update-api did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One request: (status code, body).
    pub fn request(&self, method: &str, uri: &str) -> (u16, String) {
        let (code, body) = block_on(update_api::client::request_unchecked(
            &self.socket,
            method,
            uri,
            None,
        ))
        .unwrap();
        (code.as_u16(), body)
    }

    /// `GET /updates/status`, parsed.
    pub fn status(&self) -> UpdateStatus {
        let (code, body) = self.request("GET", "/updates/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls the status until `done` holds (at most 60 s).
    pub fn wait_for(&self, what: &str, done: impl Fn(&UpdateStatus) -> bool) -> UpdateStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until no command runs.
    pub fn idle(&self) -> UpdateStatus {
        self.wait_for("no running command", |s| s.running_command.is_none())
    }

    /// Posts `uri` and waits for the command to finish; returns the status.
    pub fn command(&self, uri: &str) -> UpdateStatus {
        let (code, body) = self.request("POST", uri);
        assert_eq!(code, 204, "POST {uri}: {body}");
        self.idle()
    }

    /// Kills the server with SIGKILL (a power cut, as far as the server is concerned).
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Runs the apiclient binary with `--sysroot sysroot`.
pub fn apiclient(sysroot: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apiclient"))
        .arg("--sysroot")
        .arg(sysroot)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "apiclient failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts failure and returns the HTTP status code apiclient reported, parsed from stderr the
/// way brupop's agent does (the word after `Status`).
pub fn failed_with_status(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let parts: Vec<&str> = stderr.split("Status").collect();
    assert!(parts.len() > 1, "no 'Status <code>' in: {stderr}");
    parts[1].split_whitespace().next().unwrap().to_string()
}

/// The state in a status.
pub fn state(status: &UpdateStatus) -> UpdateState {
    status.update_state
}
