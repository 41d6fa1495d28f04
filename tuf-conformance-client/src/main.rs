//! `tuf-conformance-client`: parse, run, print one line, exit 0 on success and 1 on any failure
//! (usage errors included, as the protocol asks).

use clap::Parser;
use clap::error::ErrorKind;
use std::process::ExitCode;
use tuf_conformance_client::cli::Args;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            };
        }
    };
    match args.run() {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let text = e.to_string().replace('\n', " ");
            eprintln!("tuf-conformance-client: {text}");
            ExitCode::FAILURE
        }
    }
}
