//! Every allowed and disallowed transition of the state machine, end to end: the real
//! `update-api` binary on a node directory, a real repository served on loopback, and the
//! real `apiclient` binary. Refusals: 409 for the wrong state, 404 for nothing chosen, 423
//! while a command runs or another updater holds the lock.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use update_api::{CommandStatus, UpdateCommand, UpdateState};

#[test]
fn every_transition_and_every_refusal() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let api = world.api();
    let status = api.status();
    assert_eq!(status.update_state, UpdateState::Idle);
    let active = status.active_partition.clone().unwrap();
    assert_eq!(active.image.version.to_string(), "1.0.0");
    assert!(active.next_to_boot);
    assert_eq!(status.most_recent_command, None);

    // Idle: only refresh.
    for uri in [
        "/actions/prepare-update",
        "/actions/activate-update",
        "/actions/deactivate-update",
        "/actions/cancel-update",
    ] {
        assert_eq!(api.request("POST", uri).0, 409, "{uri} in Idle");
    }
    let status = api.command("/actions/refresh-updates");
    assert_eq!(status.update_state, UpdateState::Idle, "nothing newer yet");
    let cmd = status.most_recent_command.unwrap();
    assert_eq!(
        (cmd.cmd_type, cmd.cmd_status, cmd.exit_status),
        (UpdateCommand::Refresh, CommandStatus::Success, Some(0))
    );

    // Idle -> Available, through apiclient.
    world.release("1.1.0");
    let out = ok(&world.apiclient(&["update", "check", "--json"]));
    let status: update_api::UpdateStatus = serde_json::from_str(&out).unwrap();
    assert_eq!(status.update_state, UpdateState::Available);
    assert_eq!(status.chosen_update.unwrap().version.to_string(), "1.1.0");
    let available: Vec<String> = status
        .available_updates
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(available, ["1.1.0", "1.0.0"]);
    let human = ok(&world.apiclient(&["update", "check"]));
    assert!(human.contains("update state: Available"), "{human}");
    assert!(human.contains("chosen:       1.1.0"), "{human}");
    for uri in ["/actions/activate-update", "/actions/deactivate-update"] {
        assert_eq!(api.request("POST", uri).0, 409, "{uri} in Available");
    }
    // Refresh in Available stays Available.
    assert_eq!(
        api.command("/actions/refresh-updates").update_state,
        UpdateState::Available
    );

    // Available -> Staged: set B valid with one try, not applied.
    let status = api.command("/actions/prepare-update");
    assert_eq!(status.update_state, UpdateState::Staged, "{status:?}");
    assert_eq!(world.set_b(), (0, 1, false));
    let staging = status.staging_partition.unwrap();
    assert_eq!(staging.image.version.to_string(), "1.1.0");
    assert!(!staging.next_to_boot);
    assert_eq!(
        status.most_recent_command.unwrap().cmd_type,
        UpdateCommand::Prepare
    );
    assert_eq!(api.request("POST", "/actions/deactivate-update").0, 409);
    // Staged -> Staged: prepare again is allowed (and writes the set again).
    assert_eq!(
        api.command("/actions/prepare-update").update_state,
        UpdateState::Staged
    );
    assert_eq!(
        api.command("/actions/refresh-updates").update_state,
        UpdateState::Staged
    );

    // Staged -> Ready: B is the next to boot.
    let status = api.command("/actions/activate-update");
    assert_eq!(status.update_state, UpdateState::Ready);
    assert_eq!(world.set_b(), (2, 1, false));
    assert!(status.staging_partition.unwrap().next_to_boot);
    assert!(!status.active_partition.unwrap().next_to_boot);
    for uri in [
        "/actions/prepare-update",
        "/actions/activate-update",
        "/actions/cancel-update",
    ] {
        assert_eq!(api.request("POST", uri).0, 409, "{uri} in Ready");
    }
    assert_eq!(
        api.command("/actions/refresh-updates").update_state,
        UpdateState::Ready
    );
    // brupop's agent reads the code from apiclient's stderr.
    let out = world.apiclient(&["raw", "-u", "/actions/prepare-update", "-m", "POST"]);
    assert_eq!(failed_with_status(&out), "409");
    assert_eq!(out.status.code(), Some(1), "other refusals are errors");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Failed POST request to '/actions/prepare-update': Status 409 when POSTing /actions/prepare-update: "),
        "{stderr}"
    );

    // Ready -> Staged -> Ready.
    let status = api.command("/actions/deactivate-update");
    assert_eq!(status.update_state, UpdateState::Staged);
    assert_eq!(world.set_b(), (0, 1, false));
    assert!(status.active_partition.unwrap().next_to_boot);
    assert_eq!(
        api.command("/actions/activate-update").update_state,
        UpdateState::Ready
    );

    // Unknown paths and methods are HTTP's usual answers, not crashes.
    assert_eq!(api.request("GET", "/actions/prepare-update").0, 405);
    assert_eq!(api.request("GET", "/nope").0, 404);

    // /os: Bottlerocket's names.
    let out = ok(&world.apiclient(&["raw", "-u", "/os"]));
    let os: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(os["version_id"], "1.0.0");
    assert_eq!(os["variant_id"], "demo");
    assert_eq!(os["arch"], "x86_64");
    assert!(os["pretty_name"].is_string() && os["build_id"].is_string());
}

#[test]
fn an_update_staged_out_of_band_is_found_and_nothing_chosen_is_404() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    // updog itself stages 1.1.0; the server has never run.
    let updog = updog::Updater::new(&world.node.sysroot, None).unwrap();
    block_on(async {
        let lock = updog::UpdateLock::acquire(&updog.paths.lock, "test").unwrap();
        updog::install(
            &updog,
            &lock,
            &updog::Request::default(),
            &updog::NoProgress,
            &updog::CancellationToken::new(),
        )
        .await
        .unwrap()
        .unwrap();
    });
    let api = world.api();
    let status = api.status();
    assert_eq!(status.update_state, UpdateState::Staged, "the disk says so");
    assert_eq!(
        status.staging_partition.unwrap().image.version.to_string(),
        "1.1.0",
        "read from the inactive ROOT filesystem"
    );
    assert_eq!(status.chosen_update, None);
    let (code, body) = api.request("POST", "/actions/prepare-update");
    assert_eq!(code, 404, "{body}");
    assert_eq!(
        api.command("/actions/activate-update").update_state,
        UpdateState::Ready
    );
}

#[test]
fn a_second_command_is_423_during_a_prepare_and_cancel_stops_it() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    let api = world.api();
    assert_eq!(
        api.command("/actions/refresh-updates").update_state,
        UpdateState::Available
    );
    world.stall_root("1.1.0", 40);
    let (code, _) = api.request("POST", "/actions/prepare-update");
    assert_eq!(code, 204);
    let status = api.wait_for("the download", |s| {
        s.progress
            .as_ref()
            .is_some_and(|p| p.phase == updog::Phase::Download)
    });
    assert_eq!(
        status.running_command.unwrap().cmd_type,
        UpdateCommand::Prepare
    );
    for uri in [
        "/actions/refresh-updates",
        "/actions/prepare-update",
        "/actions/activate-update",
        "/actions/reboot",
    ] {
        assert_eq!(api.request("POST", uri).0, 423, "{uri} during a prepare");
    }
    let out = world.apiclient(&["raw", "-u", "/actions/refresh-updates", "-m", "POST"]);
    assert_eq!(failed_with_status(&out), "423");
    assert_eq!(
        out.status.code(),
        Some(4),
        "423 has its own exit code: retry"
    );

    // During a prepare the status answers at once (tests/concurrency.rs sends a burst).
    let status = api.status();
    assert_eq!(status.update_state, UpdateState::Available);
    assert!(status.running_command.is_some());

    // The progress stream gives updog's events.
    let socket = api.socket.clone();
    let first = block_on(async move {
        let mut first = None;
        let stream = update_api::client::stream_lines(&socket, "/updates/progress", |line| {
            if first.is_none() {
                first = Some(line.to_string());
            }
        });
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), stream).await;
        first
    });
    let event: updog::ProgressEvent = serde_json::from_str(&first.unwrap()).unwrap();
    assert_eq!(event.phase, updog::Phase::Download);

    // Cancel: the install stops, B stays unbootable, the state is Available again.
    let out = ok(&world.apiclient(&["update", "cancel", "--json"]));
    let status: update_api::UpdateStatus = serde_json::from_str(&out).unwrap();
    assert_eq!(status.update_state, UpdateState::Available);
    let cmd = status.most_recent_command.unwrap();
    assert_eq!(
        (cmd.cmd_type, cmd.cmd_status),
        (UpdateCommand::Prepare, CommandStatus::Failed)
    );
    assert!(cmd.stderr.unwrap().contains("cancelled"));
    assert_eq!(world.set_b(), (0, 0, false));
    assert_eq!(status.running_command, None);
    world.server.clear_faults();

    // Another updater (here: this process) holds updog's lock: 423, naming the holder.
    let lock = updog::UpdateLock::acquire(
        &world.node.sysroot.join("run/updog.lock"),
        "updog update-image",
    )
    .unwrap();
    let (code, body) = api.request("POST", "/actions/refresh-updates");
    assert_eq!(code, 423);
    assert!(body.contains("updog update-image"), "{body}");
    drop(lock);
    assert_eq!(
        api.command("/actions/refresh-updates").update_state,
        UpdateState::Available
    );
}

#[test]
fn apiclient_applies_reboots_cancels_and_the_node_boots_the_update() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    let marker = world.record_reboots();
    let mut api = world.api();
    // Nothing to apply: --check does nothing.
    let out = ok(&world.apiclient(&["update", "apply", "--check", "--json"]));
    let status: update_api::UpdateStatus = serde_json::from_str(&out).unwrap();
    assert_eq!(status.update_state, UpdateState::Idle);
    assert!(!marker.exists());

    world.release("1.1.0");
    let out = world.apiclient(&[
        "update",
        "apply",
        "--check",
        "--reboot",
        "--progress",
        "json",
    ]);
    let stdout = ok(&out);
    assert!(stdout.contains("update state: Ready"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"phase\":\"download\""),
        "progress shown: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "now");
    assert_eq!(world.set_b(), (2, 1, false));

    // Cancel after activate: deactivate (Ready -> Staged), as Bottlerocket's cancel.
    let out = ok(&world.apiclient(&["update", "cancel", "--json"]));
    let status: update_api::UpdateStatus = serde_json::from_str(&out).unwrap();
    assert_eq!(status.update_state, UpdateState::Staged);
    assert_eq!(world.set_b(), (0, 1, false));
    // Cancel after prepare: the staged update is discarded (-> Available, B unbootable).
    let out = ok(&world.apiclient(&["update", "cancel", "--json"]));
    let status: update_api::UpdateStatus = serde_json::from_str(&out).unwrap();
    assert_eq!(status.update_state, UpdateState::Available);
    assert_eq!(world.set_b(), (0, 0, false));
    let out = world.apiclient(&["update", "cancel"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to cancel"));

    // Apply again, stop the server, boot the node: it runs 1.1.0 and the server starts fresh.
    ok(&world.apiclient(&["update", "apply", "--progress", "none"]));
    assert!(api.stop().success());
    let record = node_sim::Node::open(&world.node.sysroot, None)
        .unwrap()
        .boot()
        .unwrap();
    assert_eq!(record.version.as_deref(), Some("1.1.0"), "{record:?}");
    let api = world.api();
    let status = api.status();
    assert_eq!(status.update_state, UpdateState::Idle);
    assert_eq!(status.chosen_update, None);
    assert_eq!(
        status.active_partition.unwrap().image.version.to_string(),
        "1.1.0"
    );
    assert_eq!(
        api.command("/actions/refresh-updates").update_state,
        UpdateState::Idle,
        "1.1.0 is the newest"
    );
}

#[test]
fn updog_run_between_commands_is_seen_at_the_next_status_read() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    let api = world.api();
    api.command("/actions/refresh-updates");
    api.command("/actions/prepare-update");
    assert_eq!(
        api.command("/actions/activate-update").update_state,
        UpdateState::Ready
    );
    let updog = |args: &[&str]| {
        let out = testsys::run_updog(&world.node.sysroot, args).unwrap();
        assert!(
            out.status.success(),
            "updog {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // updog reverts by hand: the next read says Staged, without any command in between.
    updog(&["update-revert"]);
    let status = api.status();
    assert_eq!(status.update_state, UpdateState::Staged, "{status:?}");
    assert!(status.active_partition.unwrap().next_to_boot);
    assert!(!status.staging_partition.unwrap().next_to_boot);
    // ... and applies again: Ready.
    updog(&["update-apply"]);
    assert_eq!(api.status().update_state, UpdateState::Ready);

    // updog stages another version than the chosen one: set B holds 1.0.0, not applied, A
    // boots next. The status says so, and neither Staged nor Ready for 1.1.0.
    updog(&["update-image", "--image", "1.0.0", "--progress", "none"]);
    assert_eq!(world.set_b(), (0, 1, false));
    let status = api.status();
    assert_eq!(status.update_state, UpdateState::Available, "{status:?}");
    assert_eq!(status.chosen_update.unwrap().version.to_string(), "1.1.0");
    assert!(status.active_partition.unwrap().next_to_boot);
    let staging = status.staging_partition.unwrap();
    assert_eq!(
        (staging.image.version.to_string(), staging.next_to_boot),
        ("1.0.0".to_string(), false)
    );
    // The status file, read after a restart or by hand, says the same.
    let file =
        update_api::UpdateStatus::load(&world.node.sysroot.join("run/update-status.json")).unwrap();
    assert_eq!(file.update_state, UpdateState::Available);
    // Activating would boot 1.0.0, not the chosen update: refused.
    let (code, body) = api.request("POST", "/actions/activate-update");
    assert_eq!(code, 409, "{body}");
    assert_eq!(world.set_b(), (0, 1, false));
    // Prepare writes the chosen update over it: Staged for 1.1.0 again.
    let status = api.command("/actions/prepare-update");
    assert_eq!(status.update_state, UpdateState::Staged);
    assert_eq!(
        status.staging_partition.unwrap().image.version.to_string(),
        "1.1.0"
    );

    // updog applies it behind the server's back: activate is refused as the disk says Ready.
    updog(&["update-apply"]);
    let (code, body) = api.request("POST", "/actions/activate-update");
    assert_eq!(code, 409, "{body}");
    assert_eq!(api.status().update_state, UpdateState::Ready);
}
