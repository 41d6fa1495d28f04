//! Command-line arguments: raw flags here, resolved under the sysroot by each verb.

mod confirm;
mod migrate;
mod status;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Brings the settings datastore to the booted OS version (run at boot), or confirms it.
#[derive(Debug, Parser)]
#[command(name = "migrator", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    migrate: migrate::Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Marks the current datastore version confirmed (after mark-successful-boot) and prunes
    /// to the current and previous versions.
    Confirm(confirm::Args),
    /// Shows the datastore's version, whether it is confirmed, and the kept previous version.
    Status(status::Args),
}

/// The sysroot and datastore flags every verb takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Common {
    /// Resolve every default path under this directory.
    #[arg(long, value_name = "DIR", default_value = "/", global = true)]
    sysroot: PathBuf,
    /// The datastore root [default: <sysroot>/var/lib/datastore].
    #[arg(long, value_name = "DIR", global = true)]
    datastore: Option<PathBuf>,
}

impl Common {
    fn path(&self, explicit: &Option<PathBuf>, default: &str) -> PathBuf {
        explicit
            .clone()
            .unwrap_or_else(|| self.sysroot.join(default))
    }

    fn datastore(&self) -> PathBuf {
        self.path(&self.datastore, migrator::DATASTORE)
    }
}

impl Cli {
    /// Parses the command line; a usage error (including migration flags given to a verb)
    /// is a clap error, which exits 2.
    pub(crate) fn try_parse_checked<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args)?;
        if cli.command.is_some() && cli.migrate.is_given() {
            return Err(<Cli as clap::CommandFactory>::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "the migration flags (--os-release, --trusted-root, --cache-*, --json) \
                 go without a verb, not with 'confirm' or 'status'",
            ));
        }
        Ok(cli)
    }

    pub(crate) fn run(self) -> migrator::Result<()> {
        match self.command {
            None => self.migrate.run(&self.common),
            Some(Command::Confirm(args)) => args.run(&self.common),
            Some(Command::Status(args)) => args.run(&self.common),
        }
    }
}

/// The error on one line (Display of the chain, which our messages already include).
pub(crate) fn one_line(error: &migrator::Error) -> String {
    error.to_string().replace('\n', " ")
}

/// Path display for messages.
pub(crate) fn show(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_and_verbs_parse() {
        let cli =
            Cli::try_parse_from(["migrator", "--sysroot", "/n", "--os-release", "/o"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["migrator", "confirm", "--sysroot", "/n"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Confirm(_))));
        assert_eq!(cli.common.sysroot, PathBuf::from("/n"));
        let cli = Cli::try_parse_from(["migrator", "--sysroot", "/m", "status", "--json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Status(_))));
        assert_eq!(cli.common.sysroot, PathBuf::from("/m"));
        assert!(Cli::try_parse_checked(["migrator", "--os-release", "/o", "confirm"]).is_err());
        assert!(Cli::try_parse_from(["migrator", "--bogus"]).is_err());
    }
}
