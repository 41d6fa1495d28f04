//! The examples in docs/api.md are real: this test drives a node through refresh, prepare and
//! activate, captures each request and response, and checks that the documented examples have
//! the same shape and values as the live ones and parse with brupop's own types (copied below
//! from bottlerocket-update-operator's agent/src/apiclient.rs). `UPDATE_API_DOCS=1` rewrites
//! the captured section of docs/api.md instead.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde::Deserialize;
use std::path::Path;

const BEGIN: &str = "<!-- BEGIN CAPTURED EXAMPLES (update-api/tests/docs.rs) -->";
const END: &str = "<!-- END CAPTURED EXAMPLES -->";

/// brupop's view of the status (agent/src/apiclient.rs): closed enums, required fields.
mod brupop {
    use super::Deserialize;
    use semver::Version;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    pub(super) struct UpdateStatus {
        pub(super) update_state: UpdateState,
        #[serde(rename = "available_updates")]
        pub(super) _available_updates: Vec<Version>,
        pub(super) chosen_update: Option<UpdateImage>,
        #[serde(rename = "active_partition")]
        pub(super) _active_partition: Option<StagedImage>,
        #[serde(rename = "staging_partition")]
        pub(super) _staging_partition: Option<StagedImage>,
        pub(super) most_recent_command: CommandResult,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    pub(super) enum UpdateState {
        Idle,
        Available,
        Staged,
        Ready,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    pub(super) struct UpdateImage {
        #[serde(rename = "arch")]
        pub(super) _arch: String,
        pub(super) version: Version,
        #[serde(rename = "variant")]
        pub(super) _variant: String,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub(super) enum UpdateCommand {
        Refresh,
        Prepare,
        Activate,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    pub(super) enum CommandStatus {
        Success,
        Failed,
        Unknown,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    pub(super) struct StagedImage {
        #[serde(rename = "image")]
        _image: Option<UpdateImage>,
        #[serde(rename = "next_to_boot")]
        _next_to_boot: bool,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    pub(super) struct CommandResult {
        pub(super) cmd_type: UpdateCommand,
        pub(super) cmd_status: CommandStatus,
        #[serde(rename = "timestamp")]
        _timestamp: String,
        #[serde(rename = "exit_status")]
        _exit_status: u32,
        #[serde(rename = "stderr")]
        _stderr: String,
    }

    #[derive(Debug, Deserialize)]
    pub(super) struct OsInfo {
        pub(super) version_id: Version,
    }
}

/// One captured exchange.
struct Example {
    name: &'static str,
    request: String,
    code: u16,
    body: String,
}

impl Example {
    fn markdown(&self) -> String {
        let mut out = format!(
            "<!-- captured:{} -->\n```text\n{}\n```\n\nAnswer: `{}`",
            self.name, self.request, self.code
        );
        if self.body.trim().is_empty() {
            out.push_str(" (no body)\n");
        } else if let Some(pretty) = pretty(&self.body) {
            out.push_str(&format!("\n\n```json\n{pretty}\n```\n"));
        } else {
            out.push_str(&format!("\n\n```text\n{}\n```\n", self.body.trim_end()));
        }
        out
    }
}

/// Pretty JSON in the server's field order.
fn pretty(body: &str) -> Option<String> {
    if let Ok(status) = serde_json::from_str::<update_api::UpdateStatus>(body) {
        return serde_json::to_string_pretty(&status).ok();
    }
    if let Ok(os) = serde_json::from_str::<update_api::os::OsInfo>(body) {
        return serde_json::to_string_pretty(&os).ok();
    }
    None
}

fn exchange(api: &ApiServer, name: &'static str, method: &str, uri: &str) -> Example {
    let (code, body) = api.request(method, uri);
    Example {
        name,
        request: format!("{method} {uri}"),
        code,
        body,
    }
}

/// The key structure of a JSON value, with the values of the closed enums kept.
fn shape(value: &serde_json::Value, key: &str) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v, k))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| shape(v, key)).collect()),
        Value::String(s) if ["update_state", "cmd_type", "cmd_status"].contains(&key) => {
            Value::String(s.clone())
        }
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Null => Value::Null,
    }
}

/// The documented examples: name → (answer code, body).
fn documented(doc: &str) -> Vec<(String, u16, String)> {
    let section = doc
        .split(BEGIN)
        .nth(1)
        .and_then(|s| s.split(END).next())
        .expect("docs/api.md has the captured section");
    section
        .split("<!-- captured:")
        .skip(1)
        .map(|part| {
            let name = part.split(" -->").next().unwrap().to_string();
            let code: u16 = part
                .split("Answer: `")
                .nth(1)
                .unwrap()
                .split('`')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let body = part
                .split("```json\n")
                .nth(1)
                .or_else(|| part.split("```text\n").nth(2))
                .map(|s| s.split("\n```").next().unwrap().to_string())
                .unwrap_or_default();
            (name, code, body)
        })
        .collect()
}

#[test]
fn docs_api_md_examples_are_captured_from_the_server_and_parse_as_brupop_s() {
    if !tools_present() {
        return;
    }
    let world = World::new();
    world.release("1.1.0");
    let api = world.api();
    let mut examples = vec![exchange(&api, "os", "GET", "/os")];
    examples.push(exchange(
        &api,
        "refresh",
        "POST",
        "/actions/refresh-updates",
    ));
    api.idle();
    examples.push(exchange(&api, "status-available", "GET", "/updates/status"));
    examples.push(exchange(&api, "prepare", "POST", "/actions/prepare-update"));
    api.idle();
    examples.push(exchange(&api, "status-staged", "GET", "/updates/status"));
    examples.push(exchange(
        &api,
        "activate",
        "POST",
        "/actions/activate-update",
    ));
    api.idle();
    examples.push(exchange(&api, "status-ready", "GET", "/updates/status"));
    examples.push(exchange(
        &api,
        "conflict",
        "POST",
        "/actions/prepare-update",
    ));
    let out = world.apiclient(&["raw", "-u", "/actions/prepare-update", "-m", "POST"]);
    examples.push(Example {
        name: "apiclient-error",
        request: "apiclient raw -u /actions/prepare-update -m POST".to_string(),
        code: 409,
        body: String::from_utf8_lossy(&out.stderr).into_owned(),
    });

    // Live answers parse with brupop's types.
    for e in &examples {
        if e.name.starts_with("status-") {
            let status: brupop::UpdateStatus = serde_json::from_str(&e.body).unwrap();
            assert_eq!(
                status.most_recent_command.cmd_status,
                brupop::CommandStatus::Success
            );
        }
    }

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    if std::env::var_os("UPDATE_API_DOCS").is_some() {
        let captured: Vec<String> = examples.iter().map(Example::markdown).collect();
        let (head, rest) = doc.split_once(BEGIN).unwrap();
        let tail = rest.split_once(END).unwrap().1;
        let new = format!("{head}{BEGIN}\n\n{}\n{END}{tail}", captured.join("\n"));
        std::fs::write(&path, new).unwrap();
        return;
    }
    let documented = documented(&doc);
    assert_eq!(
        documented.len(),
        examples.len(),
        "rerun with UPDATE_API_DOCS=1"
    );
    for ((name, code, body), live) in documented.iter().zip(&examples) {
        assert_eq!(name, live.name);
        assert_eq!(*code, live.code, "{name}");
        match name.as_str() {
            "os" => {
                let os: brupop::OsInfo = serde_json::from_str(body).unwrap();
                assert_eq!(os.version_id.to_string(), "1.0.0");
            }
            n if n.starts_with("status-") => {
                let doc_status: brupop::UpdateStatus = serde_json::from_str(body).unwrap();
                assert!(doc_status.chosen_update.is_some());
                let a: serde_json::Value = serde_json::from_str(body).unwrap();
                let b: serde_json::Value = serde_json::from_str(&live.body).unwrap();
                assert_eq!(
                    shape(&a, ""),
                    shape(&b, ""),
                    "{name}: rerun with UPDATE_API_DOCS=1"
                );
            }
            "apiclient-error" => {
                assert!(body.contains("Status 409"), "{body}");
                assert_eq!(body.trim_end(), live.body.trim_end());
            }
            "conflict" => assert_eq!(body.trim_end(), live.body.trim_end()),
            _ => assert!(body.is_empty(), "{name}"),
        }
    }
}
