//! `migrator status`: the datastore's version and confirmation.

use super::{Common, show};

/// Flags of `status`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub(crate) fn run(self, common: &Common) -> migrator::Result<()> {
        let root = common.datastore();
        let status = migrator::status(&root)?;
        if self.json {
            println!("{}", serde_json::to_string(&status).unwrap_or_default());
            return Ok(());
        }
        match status {
            None => println!("No datastore in '{}'", show(&root)),
            Some(s) => {
                let previous = s
                    .previous
                    .map_or("none".to_string(), |(v, _)| v.to_string());
                println!(
                    "version {} ({}), previous {previous}, directory '{}'",
                    s.version,
                    if s.confirmed {
                        "confirmed"
                    } else {
                        "unconfirmed"
                    },
                    show(&s.directory)
                );
            }
        }
        Ok(())
    }
}
