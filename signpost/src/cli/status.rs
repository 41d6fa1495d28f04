//! `status`: both sets, the active one and the next boot, as a table or JSON.

use super::GlobalArgs;
use clap::Args;
use signpost::{CopyState, Error, PartitionStatus, Result, SetStatus, Status};

/// Arguments of `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print the stable JSON object documented in the README.
    #[arg(long)]
    json: bool,
}

impl StatusArgs {
    pub(crate) fn run(&self, global: &GlobalArgs) -> Result<()> {
        let mut disk = global.open(true)?;
        if !disk.health().is_clean() {
            // A stale or torn copy may be a table write in progress: repair only under the
            // update lock, from a table read again under it, and otherwise report as read.
            match global.lock("status") {
                Ok(_lock) => {
                    disk = global.open(true)?;
                    disk.repair()?;
                }
                Err(e @ Error::Locked { .. }) => {
                    tracing::warn!("not repairing the GPT while the update lock is held: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        let source = match global.find_active(&mut disk) {
            Ok(source) => Some(source.to_string()),
            Err(e) => {
                tracing::info!("{e}");
                None
            }
        };
        let status = disk.status(source);
        if self.json {
            println!("{}", status.to_json()?);
        } else {
            print!("{}", render(&status));
        }
        Ok(())
    }
}

fn copy_state(state: &CopyState) -> String {
    match state {
        CopyState::Good => "good".to_string(),
        CopyState::Stale => "stale".to_string(),
        CopyState::Invalid { reason } => format!("invalid ({reason})"),
    }
}

fn render(status: &Status) -> String {
    let mut out = format!("Disk '{}' (GUID {})\n", status.disk, status.disk_guid);
    out += &format!(
        "GPT copies: primary {}, backup {}{}\n",
        copy_state(&status.table.primary),
        copy_state(&status.table.backup),
        if status.table.repaired {
            "; repaired"
        } else {
            ""
        }
    );
    for (id, set) in [("A", &status.a), ("B", &status.b)] {
        let mut notes = Vec::new();
        if status.active.is_some_and(|a| a.to_string() == id) {
            notes.push("active");
        }
        if status.next_boot.is_some_and(|n| n.to_string() == id) {
            notes.push("boots next");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        out += &format!("\nSet {id}{notes}\n");
        out += &format!(
            "  priority {}  tries left {}  successful {}  bootable {}\n",
            set.priority,
            set.tries_left,
            yes_no(set.successful),
            yes_no(set.bootable)
        );
        out += &partition_rows(set);
    }
    out += &format!("\n{}\n", partition_row("PRIVATE", &status.private));
    let active = match (&status.active, &status.active_source) {
        (Some(set), Some(source)) => format!("{set} (from {source})"),
        (Some(set), None) => set.to_string(),
        _ => "unknown".to_string(),
    };
    out += &format!("Active set: {active}\n");
    let next = status
        .next_boot
        .map_or_else(|| "none (no bootable set)".to_string(), |s| s.to_string());
    out += &format!("Next boot: {next}\n");
    out += &format!(
        "A boot has ever succeeded: {}\n",
        yes_no(status.has_boot_ever_succeeded)
    );
    out
}

fn partition_rows(set: &SetStatus) -> String {
    let mut rows = partition_row("BOOT", &set.boot) + "\n";
    rows += &(partition_row("ROOT", &set.root) + "\n");
    rows += &(partition_row("HASH", &set.hash) + "\n");
    if let Some(reserved) = &set.reserved {
        rows += &(partition_row("RESERVED", reserved) + "\n");
    }
    rows
}

fn partition_row(kind: &str, p: &PartitionStatus) -> String {
    format!(
        "  {kind:<9}#{:<3} {:<24} {:>6} MiB  {}",
        p.number,
        p.label,
        p.size_bytes >> 20,
        p.unique_guid
    )
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}
