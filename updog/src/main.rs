//! `updog`: parse the command line, run the library, map the outcome to an exit code
//! (0 done, 1 error, 2 usage, 3 nothing to do, 4 another updater holds the lock).

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = updog::cli::Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let code = match updog::cli::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("updog: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
