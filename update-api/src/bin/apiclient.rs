//! `apiclient`: the update API's client (see the crate's README). Errors are printed as
//! Bottlerocket's apiclient prints them (brupop parses `Status <code>` from them).
use clap::Parser;

fn main() {
    let args = update_api::cli::apiclient::ApiclientArgs::parse();
    if let Err(e) = args.run() {
        eprintln!("{e}");
        std::process::exit(e.exit_code());
    }
}
