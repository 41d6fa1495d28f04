//! The API under load and beside other updaters, while a prepare runs: a bounded burst of status
//! requests is answered in full, and `updog` and `signpost` refuse to touch the disk the prepare
//! is writing, naming the API as the holder of the update lock.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signpost::SetId;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use testsys::Fault;
use update_api::{CommandStatus, UpdateCommand, UpdateState};

const CLIENTS: usize = 50;
const REQUESTS_PER_CLIENT: usize = 20;

/// The status fields docs/api.md documents as always present (Bottlerocket's), and ours that are
/// present while a prepare runs.
const ALWAYS: [&str; 6] = [
    "update_state",
    "available_updates",
    "chosen_update",
    "active_partition",
    "staging_partition",
    "most_recent_command",
];
const COMMAND: [&str; 5] = [
    "cmd_type",
    "cmd_status",
    "timestamp",
    "exit_status",
    "stderr",
];

/// `CLIENTS` concurrent connections, each sending `REQUESTS_PER_CLIENT` `GET /updates/status`
/// one after another; every answer's (code, body).
fn burst(socket: &Path) -> Vec<(u16, String)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let socket = socket.to_path_buf();
            clients.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..REQUESTS_PER_CLIENT {
                    let (code, body) = update_api::client::request_unchecked(
                        &socket,
                        "GET",
                        "/updates/status",
                        None,
                    )
                    .await
                    .unwrap();
                    answers.push((code.as_u16(), body));
                }
                answers
            }));
        }
        let mut all = Vec::new();
        for client in clients {
            all.extend(client.await.unwrap());
        }
        all
    })
}

fn signpost(sysroot: &Path, args: &[&str]) -> Output {
    testsys::run_signpost(sysroot, args).unwrap()
}

fn updog(sysroot: &Path, args: &[&str]) -> Output {
    testsys::run_updog(sysroot, args).unwrap()
}

/// Asserts exit code 4 and the one line naming the API's prepare as the holder.
fn locked_by_the_api(out: &Output, program: &str, lock: &Path, api_pid: u32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{program}: {stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{program}: Failed to take the update lock '{}': it is held by pid {api_pid} (update API prepare)",
            lock.display()
        )
    );
}

#[test]
fn a_burst_of_status_requests_and_other_updaters_during_a_prepare() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let second = world.release("1.1.0");
    let api = world.api();
    let api_pid = api.child.as_ref().unwrap().id();
    let sysroot = world.node.sysroot.clone();
    let lock = sysroot.join("run/updog.lock");
    assert_eq!(
        api.command("/actions/refresh-updates").update_state,
        UpdateState::Available
    );

    // The prepare pauses 4000 bytes into the root image, until resumed: it is running, holding
    // the lock with set B half written, for as long as the test needs.
    world
        .inject_target("1.1.0-root.ext4.lz4", Fault::PauseAfter(4000), Some(1))
        .unwrap();
    let (code, body) = api.request("POST", "/actions/prepare-update");
    assert_eq!(code, 204, "{body}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while world.server.paused() == 0 {
        assert!(Instant::now() < deadline, "the root download never started");
        std::thread::sleep(Duration::from_millis(20));
    }

    // 1,000 status requests from 50 concurrent clients: every one 200 and a whole document.
    let answers = burst(&api.socket);
    assert_eq!(answers.len(), CLIENTS * REQUESTS_PER_CLIENT);
    for (code, body) in &answers {
        assert_eq!(*code, 200, "{body}");
        let doc: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("not a whole JSON document ({e}): {body}"));
        for field in ALWAYS {
            assert!(doc.get(field).is_some(), "no '{field}' in {body}");
        }
        for field in COMMAND {
            assert!(
                doc["most_recent_command"].get(field).is_some(),
                "no most_recent_command.{field} in {body}"
            );
        }
        assert_eq!(doc["update_state"], "Available", "{body}");
        assert_eq!(doc["chosen_update"]["version"], "1.1.0", "{body}");
        assert_eq!(doc["running_command"]["cmd_type"], "prepare", "{body}");
        let typed: update_api::UpdateStatus = serde_json::from_str(body).unwrap();
        assert_eq!(typed.update_state, UpdateState::Available);
    }

    // updog and signpost refuse to touch the disk the prepare is writing, naming the API.
    for verb in [
        &["update-image", "--progress", "none"][..],
        &["update-apply"],
    ] {
        locked_by_the_api(&updog(&sysroot, verb), "updog", &lock, api_pid);
    }
    for verb in [
        "mark-inactive-valid",
        "upgrade-to-inactive",
        "clear-inactive",
    ] {
        locked_by_the_api(&signpost(&sysroot, &[verb]), "signpost", &lock, api_pid);
    }
    assert_eq!(world.set_b(), (0, 0, false));
    // A second command through the API is 423 naming the running one.
    let (code, body) = api.request("POST", "/actions/activate-update");
    assert_eq!(code, 423, "{body}");

    // Let the prepare go: it stages the images it was writing, intact.
    world.server.resume();
    let status = api.idle();
    assert_eq!(status.update_state, UpdateState::Staged);
    let cmd = status.most_recent_command.unwrap();
    assert_eq!(
        (cmd.cmd_type, cmd.cmd_status),
        (UpdateCommand::Prepare, CommandStatus::Success)
    );
    assert_eq!(world.set_b(), (0, 1, false));
    assert_eq!(
        world.node.images_differing(SetId::B, &second).unwrap(),
        Vec::<&str>::new(),
        "set B differs from the release"
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
}

#[test]
fn the_socket_admits_only_root_and_its_group() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if !tools_present() {
        return;
    }
    let world = World::new();
    let api = world.api();
    let meta = std::fs::metadata(&api.socket).unwrap();
    assert!(meta.file_type().is_socket());
    // Whoever may connect may stage, apply and reboot: nobody else may.
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
}

#[test]
fn a_second_server_refuses_the_socket_of_a_running_one_and_replaces_a_stale_one() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let mut api = world.api();
    let status_file = world.node.sysroot.join("run/update-status.json");
    let before = std::fs::read(&status_file).unwrap();

    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_update-api"))
        .arg("--sysroot")
        .arg(&world.node.sysroot)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while second.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            second.kill().unwrap();
            second.wait().unwrap();
            panic!("a second update-api took over the socket of the running one");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "update-api: Failed to listen on the API socket '{}': another server answers on it",
            api.socket.display()
        )
    );
    assert!(out.stdout.is_empty());
    // The first server still answers on its socket, and its status file was not touched.
    assert_eq!(api.status().update_state, UpdateState::Idle);
    assert_eq!(std::fs::read(&status_file).unwrap(), before);

    // A socket nobody answers on (the server was killed) is replaced.
    api.sigkill();
    assert!(api.socket.exists());
    let api = world.api();
    assert_eq!(api.status().update_state, UpdateState::Idle);
}
