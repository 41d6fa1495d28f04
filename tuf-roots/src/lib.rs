//! The trusted TUF roots the update agent ships with.
//!
//! Each root lives in `roots/<name>/root.json` with its provenance in this crate's README: which
//! repository it signs, which keys it lists, and the exact commands that made it. An OS image
//! ships one of them as `usr/share/updog/root.json`; docs/tuf-roots.md says how an operator makes
//! a production root offline, adds it here and rotates it.
//!
//! ```
//! let test = tuf_roots::get("test").unwrap();
//! assert!(test.test_only);
//! assert!(test.json.contains("\"consistent_snapshot\": true"));
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p tuf-roots`. `tests/roots.rs` walks every `roots/*/root.json` and checks
//! that it is listed in [`ROOTS`], is a valid self-signed root meeting its root threshold (verified
//! with tough), uses consistent snapshots, has every role with a threshold it can meet, uses
//! whole-second times, and does not expire within 90 days.
#![deny(missing_docs)]

/// A root.json this crate ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShippedRoot {
    /// The directory name under `roots/`.
    pub name: &'static str,
    /// The root.json, as signed.
    pub json: &'static str,
    /// A root whose private keys are in this repository: for tests and demos, never production.
    pub test_only: bool,
}

/// Every root under `roots/`.
pub const ROOTS: &[ShippedRoot] = &[ShippedRoot {
    name: "test",
    json: include_str!("../roots/test/root.json"),
    test_only: true,
}];

/// The root named `name`, if this crate ships one.
pub fn get(name: &str) -> Option<&'static ShippedRoot> {
    ROOTS.iter().find(|root| root.name == name)
}
