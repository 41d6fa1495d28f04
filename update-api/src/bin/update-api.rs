//! `update-api`: the update API server (see the crate's README).
use clap::Parser;

fn main() {
    let args = update_api::cli::server::ServerArgs::parse();
    if let Err(e) = args.run() {
        eprintln!("update-api: {e}");
        std::process::exit(e.exit_code());
    }
}
