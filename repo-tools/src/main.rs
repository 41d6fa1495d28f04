//! `repo-tool`: keeps signed TUF update repositories for CI pipelines.
//!
//! Exit codes: 0 success, 1 error (one line on stderr), 2 usage error.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(args.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", update_metadata::error::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
