//! `twinset-demo`: the whole story on one machine, with the real binaries.
//!
//! A publisher makes keys and a root and publishes releases to a repository served over HTTP on
//! loopback: 1.0.0; 1.1.0 with a migration that changes a setting; later 1.2.0, whose health
//! check fails. A node in a temporary directory boots 1.0.0 and runs the update API server; the
//! updates go through `apiclient update apply --reboot`, as an operator or a Kubernetes operator
//! drives them: to 1.1.0 (reboot, migration forward, health gate passes, set marked), then to
//! 1.2.0 (health gate fails, reboot, the bootloader falls back to 1.1.0, the datastore goes back
//! to the 1.1.0 copy, the setting intact, 1.2.0 not offered again). Every step prints what happened, both sets'
//! flags, the datastore version and the setting, and a table sums it up at the end.
//!
//! Usage: `twinset-demo [--keep]` (`--help` for help), through `./demo`, which builds it and the
//! binaries it runs.

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;
use testsys::{HttpServer, NodeSpec, PublishOptions, TestNode, TestRepo};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SETTING: &str = "settings.motd";

const HEALTHY: &str = r#"[[check]]
name = "settings readable"
command = ["sh", "-c", "test -e \"$TWINSET_SYSROOT/var/lib/datastore/current\""]
timeout_secs = 5
"#;

const FAILING: &str = r#"[[check]]
name = "kubelet"
command = ["sh", "-c", "echo 'kubelet: connection refused' >&2; exit 1"]
timeout_secs = 5
"#;

const MOTD_MIGRATION: &[u8] = br#"{
  "description": "1.1.0 words the message of the day differently",
  "operations": [
    {"op": "replace", "key": "settings.motd", "old": "Welcome to twinset", "new": "Welcome to twinset 1.1"}
  ]
}
"#;

const COLOR_MIGRATION: &[u8] =
    br#"{"operations": [{"op": "add", "key": "settings.color", "value": "purple"}]}
"#;

/// Publish, check, install, flip, boot, migrate and fall back, told as it happens, with the
/// real binaries (built by `./demo`, which runs this).
#[derive(Debug, Parser)]
#[command(name = "twinset-demo", version)]
struct Args {
    /// Keep the node and the repository afterwards (their paths are printed) for a look.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args.keep) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Demo {
    bin: PathBuf,
    node: TestNode,
    rows: Vec<[String; 6]>,
    server: Option<Child>,
    server_log: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop_server();
    }
}

fn run(keep: bool) -> Result<()> {
    let started = Instant::now();
    let work = tempfile::Builder::new().prefix("twinset-demo.").tempdir()?;
    let bin = std::env::current_exe()?
        .parent()
        .ok_or("the demo binary has no directory")?
        .to_path_buf();
    for tool in ["updog", "node-sim", "update-api", "apiclient"] {
        if !bin.join(tool).is_file() {
            return Err(format!("'{tool}' is not built next to the demo; run ./demo").into());
        }
    }

    chapter("Publisher: keys, a root of trust, two releases");
    let repo = TestRepo::create(&work.path().join("publisher"), "demo", "x86_64")?;
    say("generated an ed25519 key and a signed root.json (threshold 1, consistent snapshots)");
    let motd = work.path().join("motd.json");
    std::fs::write(&motd, MOTD_MIGRATION)?;
    let color = work.path().join("color.json");
    std::fs::write(&color, COLOR_MIGRATION)?;
    let image = |checks: &'static str| -> Vec<(&'static str, &'static [u8])> {
        vec![("etc/twinset/health-checks.toml", checks.as_bytes())]
    };
    let with = |m: &Path| PublishOptions {
        migrations: vec![m.to_path_buf()],
        ..PublishOptions::default()
    };
    let first = repo.release("1.0.0", &image(HEALTHY), &PublishOptions::default())?;
    say("published 1.0.0 (ext4 ROOT, its dm-verity HASH, BOOT with the verity parameters)");
    repo.release("1.1.0", &image(HEALTHY), &with(&motd))?;
    say("published 1.1.0, with a declarative migration that rewrites settings.motd");
    let server = HttpServer::serve(&repo.base())?;
    say(&format!(
        "serving the signed repository at {}",
        server.url()
    ));

    chapter("Node: a GPT disk with two partition sets, 1.0.0 in set A");
    let spec = NodeSpec {
        urls: Some(repo.urls(&server.url())),
        seed: Some(1024),
        ..NodeSpec::default()
    };
    let node = TestNode::create(&work.path().join("node"), &first, &spec)?;
    // In a directory, "reboot" is the demo's next boot below; updog only records the request.
    let toml = node.sysroot.join("etc/updog.toml");
    let mut config = std::fs::read_to_string(&toml)?;
    config.push_str("reboot_command = [\"true\"]\n");
    std::fs::write(&toml, config)?;
    say(&format!("node directory {}", node.sysroot.display()));
    let server_log = work.path().join("update-api.log");
    let mut demo = Demo {
        bin,
        node,
        rows: Vec::new(),
        server: None,
        server_log,
    };

    chapter("Power on");
    demo.boot()?;
    datastore(&demo.node.sysroot)?.set(
        &migrator::Key::new(SETTING)?,
        &serde_json::json!("Welcome to twinset"),
    )?;
    say(&format!(
        "an operator sets {SETTING} = \"Welcome to twinset\""
    ));
    demo.row("booted 1.0.0")?;

    chapter("Update to 1.1.0 through the update API");
    demo.tool("apiclient", &["update", "check"], &[])?;
    demo.tool(
        "apiclient",
        &["update", "apply", "--check", "--reboot"],
        &[],
    )?;
    demo.row("1.1.0 written to B, applied")?;
    say("reboot");
    demo.boot()?;
    demo.row("booted 1.1.0")?;

    chapter("Update to 1.2.0, whose health check fails");
    repo.release("1.2.0", &image(FAILING), &with(&color))?;
    say("the publisher releases 1.2.0, whose image ships a health check that fails");
    demo.tool(
        "apiclient",
        &["update", "apply", "--check", "--reboot"],
        &[],
    )?;
    demo.row("1.2.0 written to A, applied")?;
    say("reboot");
    demo.boot()?;
    demo.row("1.2.0 failed its health gate")?;
    say("the gate asked for a reboot; set A spent its only try and was never marked");
    demo.boot()?;
    demo.row("fell back to 1.1.0")?;
    say("1.2.0 failed its first boot, so it is not offered again:");
    demo.tool("apiclient", &["update", "check"], &[])?;

    chapter("Summary");
    demo.summary();
    say(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    if keep {
        let kept = work.keep();
        say(&format!(
            "kept {} (the node in node/, the repository in publisher/repo/)",
            kept.display()
        ));
        // The server stops with the demo; the node's updog.toml still names its address.
        let port = server.addr().port();
        say(&format!(
            "the repository's server stopped with the demo; to update the node again, serve it at \
             the address the node knows: python3 -m http.server {port} --bind 127.0.0.1 \
             --directory {}",
            kept.join("publisher/repo").display()
        ));
    }
    Ok(())
}

impl Demo {
    /// A (re)boot: the API server goes down with the node, the node boots, the server starts.
    fn boot(&mut self) -> Result<()> {
        self.stop_server();
        // Exit code 10: the boot failed and asks for a reboot, which the story then does.
        self.tool("node-sim", &["boot"], &[10])?;
        self.start_server()
    }

    fn start_server(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.server_log)?;
        let child = Command::new(self.bin.join("update-api"))
            .arg("--sysroot")
            .arg(&self.node.sysroot)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.server = Some(child);
        let socket = self.node.sysroot.join("run/api.sock");
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "the update API did not start; see {}",
                    self.server_log.display()
                )
                .into());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(())
    }

    fn stop_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            // SIGTERM lets it stop a running command cleanly; a reboot would do the same.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Runs one of the project's binaries against the node, showing the command and its output.
    fn tool(&self, name: &str, args: &[&str], also_ok: &[i32]) -> Result<()> {
        println!("\x1b[2m   $ {name} {}\x1b[0m", args.join(" "));
        let mut command = Command::new(self.bin.join(name));
        command.arg("--sysroot").arg(&self.node.sysroot);
        if name == "updog" {
            let bar = std::io::IsTerminal::is_terminal(&std::io::stderr());
            command.args(["--progress", if bar { "bar" } else { "none" }]);
        }
        let status = command.args(args).status()?;
        let code = status.code().unwrap_or(-1);
        if !status.success() && !also_ok.contains(&code) {
            return Err(format!("{name} {} failed with {status}", args.join(" ")).into());
        }
        Ok(())
    }

    fn row(&mut self, step: &str) -> Result<()> {
        let disk = self.node.signpost()?;
        let flags = |set| {
            let f = disk.flags(set);
            let mark = if f.successful { "ok" } else { "--" };
            format!("p{} t{} {mark}", f.priority.get(), f.tries_left.get())
        };
        let running = std::fs::read_to_string(self.node.sysroot.join("etc/os-release"))?
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_ID=").map(str::to_string))
            .unwrap_or_default();
        let version = migrator::status(&self.node.sysroot.join("var/lib/datastore"))?.map_or(
            "-".to_string(),
            |s| {
                let note = if s.confirmed { "" } else { " (unconfirmed)" };
                format!("{}{note}", s.version)
            },
        );
        let setting = datastore(&self.node.sysroot)?
            .get(&migrator::Key::new(SETTING)?)?
            .map_or("-".to_string(), |v| v.to_string());
        let row = [
            step.to_string(),
            flags(signpost::SetId::A),
            flags(signpost::SetId::B),
            running,
            version,
            setting,
        ];
        println!(
            "   \x1b[36mset A {} | set B {} | running {} | datastore {} | {SETTING} = {}\x1b[0m",
            row[1], row[2], row[3], row[4], row[5]
        );
        self.rows.push(row);
        Ok(())
    }

    fn summary(&self) {
        let header = ["step", "set A", "set B", "running", "datastore", SETTING].map(String::from);
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .chain([&header])
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("   {}", parts.join("  ").trim_end());
        };
        line(&header);
        line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
        for row in &self.rows {
            line(row);
        }
        println!("\n   flags: p = priority, t = tries left, ok = marked successful");
    }
}

fn datastore(sysroot: &Path) -> Result<migrator::Datastore> {
    Ok(migrator::Datastore::open_current(
        &sysroot.join("var/lib/datastore"),
    )?)
}

fn chapter(title: &str) {
    println!("\n\x1b[1m== {title}\x1b[0m");
}

fn say(text: &str) {
    println!("   {text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn keep_is_the_only_flag_and_help_runs_nothing() {
        assert!(
            Args::try_parse_from(["twinset-demo", "--keep"])
                .unwrap()
                .keep
        );
        assert!(!Args::try_parse_from(["twinset-demo"]).unwrap().keep);
        let help = Args::try_parse_from(["twinset-demo", "--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--keep"), "{help}");
        let unknown = Args::try_parse_from(["twinset-demo", "--kep"]).unwrap_err();
        assert_eq!(unknown.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
