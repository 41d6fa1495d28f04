//! The crate's error type.
//!
//! Errors found while parsing a manifest come wrapped in [`Error::Field`], which names where in
//! the document the problem is (`updates[2].waves`, `migrations`), so the whole message reads
//! e.g. `updates[2].waves: duplicate wave key '512'`. Errors from a wave policy name the wave
//! index and field the same way (`waves[3].fleet_percentage: ...`).

use semver::Version;
use snafu::Snafu;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `message` on one line: control characters are written escaped. Messages quote keys and
/// values from the document, and a JSON string can hold a newline.
pub fn one_line(message: &impl std::fmt::Display) -> String {
    message
        .to_string()
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// An error and its causes on one line, `error: cause: cause`, leaving out a cause whose text
/// the line already holds (many errors print their source in their own message). Line breaks
/// (a tool's stderr quoted in a message) become spaces.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace(['\r', '\n'], " ")
}

/// Everything that can go wrong in this crate.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A problem at a named place in a manifest or policy document.
    #[snafu(display("{}: {}", one_line(field), one_line(source)))]
    Field {
        /// Where the problem is, e.g. `updates[2].waves`.
        field: String,
        /// What is wrong there.
        source: Box<Error>,
    },

    /// A required field is absent.
    #[snafu(display("missing field"))]
    MissingField,

    /// A chunk index is inconsistent (wrapped in [`Error::Field`] naming the field).
    #[snafu(display("{reason}"))]
    ChunkIndex {
        /// What is wrong.
        reason: String,
    },

    /// A chunk index is not JSON of the expected shape.
    #[snafu(display("Failed to parse chunk index JSON: {source}"))]
    ParseChunkIndex {
        /// The JSON error (it carries line and column).
        source: serde_json::Error,
    },

    /// The manifest is not JSON of the expected shape.
    #[snafu(display("Failed to parse manifest JSON: {}", one_line(source)))]
    ParseManifest {
        /// The JSON error (it carries line and column).
        source: serde_json::Error,
    },

    /// The manifest could not be serialised.
    #[snafu(display("Failed to serialise manifest: {source}"))]
    SerializeManifest {
        /// The JSON error.
        source: serde_json::Error,
    },

    /// A version string is not semver.
    #[snafu(display("failed to parse version '{value}': {source}"))]
    ParseVersion {
        /// The text that was given.
        value: String,
        /// Why semver refused it.
        source: semver::Error,
    },

    /// A seed or wave key is not in 0..=2047.
    #[snafu(display("seed {seed} is outside 0..=2047"))]
    SeedOutOfRange {
        /// The value that was given.
        seed: u64,
    },

    /// A seed given as text is not a decimal integer.
    #[snafu(display("seed '{value}' is not a decimal integer"))]
    SeedNotInteger {
        /// The text that was given.
        value: String,
    },

    /// A wave key is not a decimal integer.
    #[snafu(display("wave key '{key}' is not a decimal integer"))]
    WaveKeyNotInteger {
        /// The key as written.
        key: String,
    },

    /// A wave key is outside the seed range.
    #[snafu(display("wave key '{key}' is outside the seeds 0..=2047"))]
    WaveKeyOutOfRange {
        /// The key as written.
        key: String,
    },

    /// The same wave key appears twice.
    #[snafu(display("duplicate wave key '{key}'"))]
    DuplicateWaveKey {
        /// The key as written.
        key: String,
    },

    /// A wave's start time is not an RFC 3339 time.
    #[snafu(display("failed to parse the start time '{value}' of wave '{key}': {source}"))]
    ParseWaveTime {
        /// The wave key.
        key: String,
        /// The time as written.
        value: String,
        /// Why jiff refused it.
        source: jiff::Error,
    },

    /// Wave start times do not strictly increase with the seed.
    #[snafu(display(
        "wave '{seed}' starts at {start}, which is not after wave '{previous_seed}' at {previous_start}"
    ))]
    WavesNotIncreasing {
        /// The later wave's key.
        seed: u32,
        /// The later wave's start.
        start: jiff::Timestamp,
        /// The earlier wave's key.
        previous_seed: u32,
        /// The earlier wave's start.
        previous_start: jiff::Timestamp,
    },

    /// A target or migration name is not acceptable.
    #[snafu(display("invalid {kind} name '{name}': {reason}"))]
    InvalidName {
        /// "target" or "migration".
        kind: &'static str,
        /// The name as given (control characters escaped by Debug in logs).
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A migrations key is not of the form `(<from>, <to>)`.
    #[snafu(display("malformed migration key '{key}': expected '(<from>, <to>)'"))]
    MalformedMigrationKey {
        /// The key as written.
        key: String,
    },

    /// A version inside a migrations key is not semver.
    #[snafu(display("migration key '{key}': failed to parse version '{value}': {source}"))]
    MigrationKeyVersion {
        /// The key as written.
        key: String,
        /// The version text.
        value: String,
        /// Why semver refused it.
        source: semver::Error,
    },

    /// A migrations key does not go upward.
    #[snafu(display("migration key '{key}': '{from}' must be lower than '{to}'"))]
    MigrationKeyNotAscending {
        /// The key as written.
        key: String,
        /// The from version.
        from: Version,
        /// The to version.
        to: Version,
    },

    /// The same (from, to) pair appears twice.
    #[snafu(display("duplicate migration key '{key}' (({from}, {to}) is already listed)"))]
    DuplicateMigrationKey {
        /// The key as written.
        key: String,
        /// The from version.
        from: Version,
        /// The to version.
        to: Version,
    },

    /// Adding an update that the manifest already has.
    #[snafu(display("Failed to add update {variant}/{arch} {version}: it is already listed"))]
    UpdateExists {
        /// The variant.
        variant: String,
        /// The architecture.
        arch: String,
        /// The version.
        version: Version,
    },

    /// Editing an update that the manifest does not have.
    #[snafu(display("Failed to find update {variant}/{arch} {version} in the manifest"))]
    UpdateNotFound {
        /// The variant.
        variant: String,
        /// The architecture.
        arch: String,
        /// The version.
        version: Version,
    },

    /// Adding a migration list for a (from, to) pair that already has one.
    #[snafu(display("Failed to add migrations ({from}, {to}): the manifest already lists them"))]
    MigrationExists {
        /// The from version.
        from: Version,
        /// The to version.
        to: Version,
    },

    /// Adding a migration list whose from is not below its to.
    #[snafu(display("Failed to add migrations ({from}, {to}): from must be lower than to"))]
    MigrationNotAscending {
        /// The from version.
        from: Version,
        /// The to version.
        to: Version,
    },

    /// No migration entry leads on from a version towards the target.
    #[snafu(display(
        "Failed to find a migration path from {from} to {to}: no entry ({current}, t) with t <= {}",
        std::cmp::max(from, to)
    ))]
    MissingMigration {
        /// Where the path was asked to start.
        from: Version,
        /// Where the path was asked to end.
        to: Version,
        /// The version the walk (from the lower version upward) got stuck at.
        current: Version,
    },

    /// A version lock that is neither `latest` nor a version.
    #[snafu(display("Failed to parse version lock '{value}': expected 'latest' or a version"))]
    ParseVersionLock {
        /// The text that was given.
        value: String,
        /// Why semver refused it.
        source: semver::Error,
    },

    /// The wave policy is not TOML of the expected shape.
    #[snafu(display("Failed to parse wave policy TOML: {source}"))]
    ParsePolicy {
        /// The TOML error (it carries line and column).
        source: toml::de::Error,
    },

    /// A wave policy without waves.
    #[snafu(display("waves: a wave policy needs at least one wave"))]
    EmptyPolicy,

    /// A `start_after` that is not a duration.
    #[snafu(display("failed to parse duration '{value}': {source}"))]
    ParseStartAfter {
        /// The text that was given.
        value: String,
        /// Why jiff refused it.
        source: jiff::Error,
    },

    /// A `start_after` below zero.
    #[snafu(display("duration '{value}' is negative"))]
    NegativeStartAfter {
        /// The text that was given.
        value: String,
    },

    /// A `start_after` that is not later than the previous wave's.
    #[snafu(display("'{value}' is not later than the previous wave's '{previous}'"))]
    StartAfterNotIncreasing {
        /// This wave's value.
        value: String,
        /// The previous wave's value.
        previous: String,
    },

    /// A `fleet_percentage` outside 1..=100.
    #[snafu(display("{value} is outside 1..=100"))]
    PercentageOutOfRange {
        /// The value that was given.
        value: i64,
    },

    /// A `fleet_percentage` that is not above the previous wave's.
    #[snafu(display(
        "{value} is not above the previous wave's {previous} (percentages are cumulative)"
    ))]
    PercentageNotIncreasing {
        /// This wave's value.
        value: i64,
        /// The previous wave's value.
        previous: i64,
    },

    /// The last wave does not reach the whole fleet.
    #[snafu(display("{value}: the last wave must be 100 (it releases every remaining seed)"))]
    LastPercentageNot100 {
        /// The value that was given.
        value: i64,
    },

    /// Start time plus `start_after` is beyond the representable times.
    #[snafu(display("start time {start} plus '{value}' is out of range: {source}"))]
    WaveTimeOverflow {
        /// The release start.
        start: jiff::Timestamp,
        /// The offset as written.
        value: String,
        /// jiff's error.
        source: jiff::Error,
    },
}

impl Error {
    /// Wraps `self` with the place in the document where it was found.
    pub(crate) fn at(self, field: impl Into<String>) -> Error {
        Error::Field {
            field: field.into(),
            source: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message may or may not repeat its cause's.
    #[derive(Debug)]
    struct Layer(String, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn a_chain_is_one_line_and_says_each_cause_once() {
        let io = Layer("permission denied\n(os error 13)".into(), None);
        let read = Layer(
            "cannot read a.json: permission denied".into(),
            Some(io.into()),
        );
        let top = Layer("cannot load the repository".into(), Some(read.into()));
        assert_eq!(
            error_chain(&top),
            "cannot load the repository: cannot read a.json: permission denied: \
             permission denied (os error 13)"
        );
        let repeated = Layer(
            "fetch failed: timed out".into(),
            Some(Layer("timed out".into(), None).into()),
        );
        assert_eq!(error_chain(&repeated), "fetch failed: timed out");
    }
}
