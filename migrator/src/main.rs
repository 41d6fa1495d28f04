//! `migrator`: brings the settings datastore to the booted version at boot, and confirms it
//! after a successful boot. Exit codes: 0 done, 1 failed (one line on stderr), 2 usage error.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse_checked(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            // --help and --version print and exit 0; a usage error exits 2.
            e.exit()
        }
    };
    match args.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", cli::one_line(&e));
            ExitCode::from(1)
        }
    }
}
