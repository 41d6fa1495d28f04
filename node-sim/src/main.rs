//! `node-sim`: boots a node that lives in a directory.
//!
//! Exit codes: 0 the boot ended healthy; 1 error; 2 usage; 10 the boot failed and asks for a
//! reboot (the next boot falls back).

use clap::{Parser, Subcommand};
use node_sim::{Node, Outcome};
use std::path::PathBuf;
use std::process::ExitCode;
use update_metadata::error::error_chain;

/// Boots a node that lives in a directory: bootloader, dm-verity check, migrator, health gate.
#[derive(Debug, Parser)]
#[command(name = "node-sim", version, about, max_term_width = 100)]
struct Args {
    /// The node's directory.
    #[arg(long, value_name = "DIR", global = true, default_value = ".")]
    sysroot: PathBuf,
    /// The disk image (default: <sysroot>/dev/disk.img; not with create, which always makes it
    /// there).
    #[arg(long, value_name = "FILE", global = true)]
    disk: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node: a fresh disk, and a first release fetched through TUF into set A.
    Create {
        /// updog's metadata_base_url (`<base>/<variant>/<arch>/`).
        #[arg(long)]
        metadata_url: String,
        /// updog's targets_base_url.
        #[arg(long)]
        targets_url: String,
        /// The trusted root.json the node starts from.
        #[arg(long, value_name = "FILE")]
        root: PathBuf,
        /// The variant.
        #[arg(long)]
        variant: String,
        /// The architecture.
        #[arg(long, default_value = std::env::consts::ARCH)]
        arch: String,
        /// The release to install into set A.
        #[arg(long)]
        version: semver::Version,
        /// Disk size in MiB.
        #[arg(long, default_value_t = 128)]
        disk_mib: u64,
        /// The node's seed (0..2047); chosen at random on first use when absent.
        #[arg(long)]
        seed: Option<update_metadata::Seed>,
    },
    /// Power on and boot once.
    Boot {
        /// Print the boot record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Boot, and boot again while a boot asks for a reboot (at most --max-boots times).
    Settle {
        /// Give up after this many boots.
        #[arg(long, default_value_t = 4)]
        max_boots: u32,
        /// Print the boot records as JSON.
        #[arg(long)]
        json: bool,
    },
    /// On a machine already booted by its firmware and kernel (an initramfs ran `signpost
    /// boot-select` and mounted the verified ROOT): migrator, health gate, mark-successful-boot.
    Services {
        /// Print the boot record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the dm-verity table of a set's ROOT (from its BOOT's verity.params) for dmsetup.
    VerityTable {
        /// The set (default: the booted set, from run/booted-set).
        #[arg(long, value_name = "A|B")]
        set: Option<signpost::SetId>,
    },
    /// Show the last boot's outcome, both sets and the failed versions.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

const REBOOT_REQUESTED: u8 = 10;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("node-sim: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> node_sim::Result<u8> {
    let (sysroot, disk) = (args.sysroot, args.disk);
    if let Command::Create {
        metadata_url,
        targets_url,
        root,
        variant,
        arch,
        version,
        disk_mib,
        seed,
    } = args.command
    {
        if let Some(disk) = disk {
            return Err(node_sim::Error::CreateWithDisk { disk });
        }
        let spec = node_sim::CreateSpec {
            sysroot,
            metadata_url,
            targets_url,
            trusted_root: root,
            variant,
            arch,
            version,
            disk_mib,
            seed,
        };
        node_sim::create(&spec)?;
        println!(
            "created {} with {} in set A; power it on with `node-sim --sysroot {} boot`",
            spec.sysroot.display(),
            spec.version,
            spec.sysroot.display()
        );
        return Ok(0);
    }
    let node = Node::open(&sysroot, disk.as_deref())?;
    match args.command {
        Command::Create { .. } => Ok(0),
        Command::Boot { json } => {
            let rec = node.boot()?;
            print_records(std::slice::from_ref(&rec), json);
            Ok(if rec.outcome.needs_reboot() {
                REBOOT_REQUESTED
            } else {
                0
            })
        }
        Command::Services { json } => {
            let rec = node.start_services()?;
            print_records(std::slice::from_ref(&rec), json);
            Ok(if rec.outcome.needs_reboot() {
                REBOOT_REQUESTED
            } else {
                0
            })
        }
        Command::VerityTable { set } => {
            println!("{}", node.verity_table(set)?);
            Ok(0)
        }
        Command::Settle { max_boots, json } => {
            let recs = node.boot_until_settled(max_boots)?;
            print_records(&recs, json);
            Ok(0)
        }
        Command::Status { json } => {
            let last = node_sim::record::last_boot(&node.sysroot)?;
            let failed = node_sim::record::failed_versions(&node.sysroot)?;
            let sets = node.sets()?;
            if json {
                let sets: serde_json::Map<String, serde_json::Value> = sets
                    .iter()
                    .map(|(s, f)| (s.to_string(), serde_json::to_value(f).unwrap_or_default()))
                    .collect();
                let out = serde_json::json!({ "last_boot": last, "sets": sets, "failed_versions": failed });
                println!("{out:#}");
            } else {
                for (set, flags) in sets {
                    println!(
                        "set {set}: priority {} tries {} successful {}",
                        flags.priority.get(),
                        flags.tries_left.get(),
                        flags.successful
                    );
                }
                match last {
                    Some(rec) => print_records(&[rec], false),
                    None => println!("never booted"),
                }
                if !failed.is_empty() {
                    println!("failed first boots: {}", failed.join(", "));
                }
            }
            Ok(0)
        }
    }
}

fn print_records(records: &[node_sim::BootRecord], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(records).unwrap_or_default()
        );
        return;
    }
    for rec in records {
        let version = rec.version.as_deref().unwrap_or("?");
        let verdict = match rec.outcome {
            Outcome::Marked => "healthy, marked successful",
            Outcome::Healthy => "healthy",
            Outcome::Degraded => "running, but health checks fail (set already marked: no reboot)",
            Outcome::VerityFailed => "dm-verity refused ROOT: reboot",
            Outcome::MigrationFailed => "migration failed: reboot",
            Outcome::HealthFailed => "health checks failed: reboot",
        };
        println!(
            "boot {}: set {} version {version}: {verdict}",
            rec.boot, rec.set
        );
        if let Some(from) = &rec.fell_back_from {
            println!("  fell back: the other set ({from}) never reached a successful boot");
        }
        if let Some(m) = &rec.migration {
            println!("  migrator: {m}");
        }
        if !rec.reason.is_empty() {
            println!("  why: {}", rec.reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arguments_are_well_formed() {
        Args::command().debug_assert();
    }
}
