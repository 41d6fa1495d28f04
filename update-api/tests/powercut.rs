//! The server killed with SIGKILL (all it would see of a power cut) during and after a prepare
//! and after an activate, then restarted: the state it reports matches the disk, never a stale
//! status file. Staged only if the inactive set really is valid, Ready only if it is applied.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signpost::SetId;
use update_api::{CommandStatus, UpdateCommand, UpdateState, UpdateStatus};

/// Starts the server (the last one was killed) and asserts the state it reports, which the disk
/// decides; the server and its whole status.
fn restarted(world: &World, state: UpdateState) -> (ApiServer, UpdateStatus) {
    let api = world.api();
    let status = api.status();
    assert_eq!(status.update_state, state);
    (api, status)
}

/// Posts `uri` and asserts the state it ends in, kills the server with SIGKILL and starts it
/// again: [`restarted`] in the same state.
fn killed_after(
    world: &World,
    mut api: ApiServer,
    uri: &str,
    state: UpdateState,
) -> (ApiServer, UpdateStatus) {
    assert_eq!(api.command(uri).update_state, state, "POST {uri}");
    api.sigkill();
    restarted(world, state)
}

#[test]
fn killed_during_a_prepare_comes_back_available_with_the_set_unbootable() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    let mut api = world.api();
    api.command("/actions/refresh-updates");
    world.stall_root("1.1.0", 40);
    assert_eq!(api.request("POST", "/actions/prepare-update").0, 204);
    api.wait_for("the download", |s| {
        s.progress
            .as_ref()
            .is_some_and(|p| p.phase == updog::Phase::Download)
    });
    api.sigkill();
    assert_eq!(world.set_b(), (0, 0, false), "cleared before writing");

    let (api, status) = restarted(&world, UpdateState::Available);
    assert_eq!(status.running_command, None);
    let cmd = status.most_recent_command.unwrap();
    assert_eq!(
        (cmd.cmd_type, cmd.cmd_status),
        (UpdateCommand::Prepare, CommandStatus::Failed)
    );
    assert!(cmd.stderr.unwrap().contains("interrupted"));
    // The kernel released the dead server's lock: commands run again.
    world.server.clear_faults();
    let status = api.command("/actions/prepare-update");
    assert_eq!(status.update_state, UpdateState::Staged);
}

#[test]
fn killed_after_a_prepare_or_an_activate_comes_back_as_the_disk_says() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    let api = world.api();
    api.command("/actions/refresh-updates");

    // Between prepare and activate: Staged, because set B is valid.
    let (mut api, status) =
        killed_after(&world, api, "/actions/prepare-update", UpdateState::Staged);
    assert_eq!(
        status.staging_partition.unwrap().image.version.to_string(),
        "1.1.0"
    );
    api.sigkill();

    // A stale file claims Ready; the disk says only staged: Staged.
    let path = world.node.sysroot.join("run/update-status.json");
    let mut stale: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    stale["update_state"] = "Ready".into();
    std::fs::write(&path, stale.to_string()).unwrap();
    let (mut api, _) = restarted(&world, UpdateState::Staged);
    api.sigkill();

    // The set lost its validity behind the server's back (cleared out of band): Available.
    {
        let mut disk = world.node.signpost().unwrap().with_active(SetId::A);
        disk.clear_inactive().unwrap();
    }
    let (api, status) = restarted(&world, UpdateState::Available);
    assert_eq!(status.staging_partition, None);
    assert_eq!(api.request("POST", "/actions/activate-update").0, 409);

    // Prepare and activate, then a cut: Ready, because B is the next to boot.
    api.command("/actions/prepare-update");
    let (mut api, status) =
        killed_after(&world, api, "/actions/activate-update", UpdateState::Ready);
    assert!(status.staging_partition.unwrap().next_to_boot);
    api.sigkill();

    // A garbage status file is ignored; the disk still decides.
    std::fs::write(&path, b"{\"update_state\": \"Rea").unwrap();
    restarted(&world, UpdateState::Ready);
}
