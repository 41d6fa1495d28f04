//! `etc/updog.toml`: Bottlerocket's fields, plus our optional `reboot_command`.
//!
//! ```toml
//! metadata_base_url = "https://updates.example.com/aws-k8s-1.29/x86_64/"
//! targets_base_url = "https://updates.example.com/targets/"
//! seed = 1234
//! version_lock = "latest"
//! ignore_waves = false
//! https_proxy = "http://proxy.example.com:3128"
//! no_proxy = ["localhost", ".internal.example.com"]
//! reboot_command = ["systemctl", "reboot"]
//! ```
//!
//! Every field is checked on load; an error names the field. Unknown fields are ignored with a
//! warning, as Bottlerocket's updog ignores them, so a config written for a newer updog still
//! works.

use crate::error::{self, Result};
use std::path::Path;
use update_metadata::{Seed, VersionLock};
use url::Url;

/// The default reboot command.
pub const DEFAULT_REBOOT_COMMAND: [&str; 2] = ["systemctl", "reboot"];

/// The fields updog knows.
const KNOWN: [&str; 10] = [
    "metadata_base_url",
    "targets_base_url",
    "seed",
    "version_lock",
    "ignore_waves",
    "https_proxy",
    "no_proxy",
    "reboot_command",
    "low_speed_limit",
    "low_speed_time",
];

/// updog's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the metadata lives (`<base>/<variant>/<arch>/`), with a trailing slash.
    pub metadata_base_url: Url,
    /// Where the targets live, with a trailing slash.
    pub targets_base_url: Url,
    /// The node's seed, if set here (else `var/lib/updog/seed`).
    pub seed: Option<Seed>,
    /// `latest` or one exact version.
    pub version_lock: VersionLock,
    /// Take updates whatever their waves say.
    pub ignore_waves: bool,
    /// Proxy for http and https requests.
    pub https_proxy: Option<Url>,
    /// Hosts reached without the proxy.
    pub no_proxy: Vec<String>,
    /// The command `--reboot` runs.
    pub reboot_command: Vec<String>,
    /// The least bytes a second a download must deliver over `low_speed_time` (0: no minimum);
    /// `None`: the default.
    pub low_speed_limit: Option<u64>,
    /// The window of `low_speed_limit`, in seconds; `None`: the default.
    pub low_speed_time: Option<u64>,
    /// Fields we do not know (ignored, warned about).
    pub unknown_fields: Vec<String>,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| error::Error::Io {
            verb: "read config",
            path: path.to_path_buf(),
            source,
        })?;
        let config = Config::parse(&text, path)?;
        for field in &config.unknown_fields {
            tracing::warn!("{}: ignoring unknown field '{field}'", path.display());
        }
        Ok(config)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| error::Error::ConfigSyntax {
                    path: path.to_path_buf(),
                    reason: one_line(&e.to_string()),
                })?;
        let bad = |field: &str, reason: String| error::Error::ConfigField {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let string = |field: &str| -> Result<Option<String>> {
            match table.get(field) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(bad(
                    field,
                    format!("expected a string, found {}", other.type_str()),
                )),
            }
        };
        let url = |field: &str| -> Result<Url> {
            let text = string(field)?.ok_or_else(|| bad(field, "missing".to_string()))?;
            parse_base_url(&text).map_err(|reason| bad(field, reason))
        };
        let metadata_base_url = url("metadata_base_url")?;
        let targets_base_url = url("targets_base_url")?;
        let integer = |field: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>> {
            match table.get(field) {
                None => Ok(None),
                Some(toml::Value::Integer(n)) => u64::try_from(*n)
                    .ok()
                    .filter(|n| range.contains(n))
                    .map(Some)
                    .ok_or_else(|| {
                        bad(
                            field,
                            format!("{n} is not in {}..={}", range.start(), range.end()),
                        )
                    }),
                Some(other) => Err(bad(
                    field,
                    format!("expected an integer, found {}", other.type_str()),
                )),
            }
        };
        let seed = integer("seed", 0..=u64::from(Seed::MAX.get()))?
            .map(Seed::new)
            .transpose()
            .map_err(|e| bad("seed", e.to_string()))?;
        let version_lock = match string("version_lock")? {
            None => VersionLock::Latest,
            Some(text) => text.parse().map_err(|_| {
                bad(
                    "version_lock",
                    format!(
                        "'{}' is neither 'latest' nor a version",
                        text.escape_debug()
                    ),
                )
            })?,
        };
        let ignore_waves = match table.get("ignore_waves") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => {
                return Err(bad(
                    "ignore_waves",
                    format!("expected true or false, found {}", other.type_str()),
                ));
            }
        };
        let https_proxy = match string("https_proxy")? {
            None => None,
            Some(text) if text.is_empty() => None,
            Some(text) => Some(
                Url::parse(&text)
                    .map_err(|e| bad("https_proxy", format!("'{}': {e}", text.escape_debug())))?,
            ),
        };
        let no_proxy = match table.get("no_proxy") {
            None => Vec::new(),
            Some(toml::Value::String(s)) => split_hosts(s),
            Some(toml::Value::Array(items)) => {
                let mut hosts = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => hosts.extend(split_hosts(s)),
                        other => {
                            return Err(bad(
                                "no_proxy",
                                format!("expected strings, found {}", other.type_str()),
                            ));
                        }
                    }
                }
                hosts
            }
            Some(other) => {
                return Err(bad(
                    "no_proxy",
                    format!(
                        "expected a list or a comma-separated string, found {}",
                        other.type_str()
                    ),
                ));
            }
        };
        let reboot_command = match table.get("reboot_command") {
            None => DEFAULT_REBOOT_COMMAND
                .iter()
                .map(|s| s.to_string())
                .collect(),
            Some(toml::Value::Array(items)) => {
                let words: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect();
                match words {
                    Some(words) if !words.is_empty() && !words[0].is_empty() => words,
                    _ => {
                        return Err(bad(
                            "reboot_command",
                            "expected a non-empty list of strings".to_string(),
                        ));
                    }
                }
            }
            Some(other) => {
                return Err(bad(
                    "reboot_command",
                    format!("expected a list of strings, found {}", other.type_str()),
                ));
            }
        };
        let low_speed_limit = integer("low_speed_limit", 0..=u64::from(u32::MAX))?;
        let low_speed_time = integer("low_speed_time", 1..=86_400)?;
        let unknown_fields = table
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(Config {
            metadata_base_url,
            targets_base_url,
            seed,
            version_lock,
            ignore_waves,
            https_proxy,
            no_proxy,
            reboot_command,
            low_speed_limit,
            low_speed_time,
            unknown_fields,
        })
    }
}

/// Parses a repository base URL (http, https or file) and gives it a trailing slash, so
/// relative names join below it.
fn parse_base_url(text: &str) -> std::result::Result<Url, String> {
    // The text is quoted escaped: a value may hold a newline, and an error is one line.
    let shown = text.escape_debug();
    let mut url = Url::parse(text).map_err(|e| format!("'{shown}': {e}"))?;
    if !matches!(url.scheme(), "http" | "https" | "file") {
        return Err(format!(
            "'{shown}': scheme '{}' is not http, https or file",
            url.scheme()
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn split_hosts(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect()
}

/// Collapses a multi-line message onto one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("updog.toml"))
    }

    const BASE: &str = "metadata_base_url = \"http://h/m\"\ntargets_base_url = \"http://h/t/\"\n";

    #[test]
    fn bottlerocket_fields_are_read() {
        let config = parse(&format!(
            "{BASE}seed = 7\nversion_lock = \"v1.2.0\"\nignore_waves = true\n\
             https_proxy = \"http://proxy:3128\"\nno_proxy = \"localhost, .example.com\"\n"
        ))
        .unwrap();
        assert_eq!(config.metadata_base_url.as_str(), "http://h/m/");
        assert_eq!(config.seed, Some(Seed::new(7).unwrap()));
        assert_eq!(config.version_lock.to_string(), "1.2.0");
        assert!(config.ignore_waves);
        assert_eq!(config.no_proxy, ["localhost", ".example.com"]);
        assert_eq!(config.reboot_command, ["systemctl", "reboot"]);
        let config = parse(&format!(
            "{BASE}no_proxy = [\"a\", \"b\"]\nreboot_command = [\"/bin/true\"]\nfuture = 1\n"
        ))
        .unwrap();
        assert_eq!(config.no_proxy, ["a", "b"]);
        assert_eq!(config.unknown_fields, ["future"]);
    }

    #[test]
    fn the_documented_example_parses_with_every_field_known() {
        let example =
            test_tools::marked_block(include_str!("../../docs/formats-updog.md"), "updog-toml")
                .unwrap();
        let config = parse(&example).unwrap();
        assert!(
            config.unknown_fields.is_empty(),
            "{:?}",
            config.unknown_fields
        );
        assert_eq!(config.seed, Some(Seed::new(1234).unwrap()));
        assert_eq!(config.no_proxy, ["localhost", ".internal.example.com"]);
        assert_eq!(
            (config.low_speed_limit, config.low_speed_time),
            (Some(1024), Some(60))
        );
    }

    #[test]
    fn the_minimum_rate_comes_from_the_config_or_the_default() {
        use crate::transport::HttpSettings;
        use std::time::Duration;
        let config = parse(&format!(
            "{BASE}low_speed_limit = 100\nlow_speed_time = 300\n"
        ))
        .unwrap();
        assert_eq!(config.low_speed_limit, Some(100));
        assert!(config.unknown_fields.is_empty());
        let settings = HttpSettings::from_config(&config);
        assert_eq!(settings.low_speed_limit, 100);
        assert_eq!(settings.low_speed_time, Duration::from_secs(300));
        // 0 turns the minimum off; absent keys keep the defaults (1 KiB/s over 60 s).
        let off =
            HttpSettings::from_config(&parse(&format!("{BASE}low_speed_limit = 0\n")).unwrap());
        assert_eq!(off.low_speed_limit, 0);
        assert_eq!(
            HttpSettings::from_config(&parse(BASE).unwrap()),
            HttpSettings::default()
        );
    }

    #[test]
    fn bad_fields_are_named() {
        for (text, field) in [
            (
                "targets_base_url = \"http://h/t/\"\n".to_string(),
                "metadata_base_url",
            ),
            (format!("{BASE}seed = 2048\n"), "seed"),
            (format!("{BASE}seed = \"x\"\n"), "seed"),
            (format!("{BASE}version_lock = \"soon\"\n"), "version_lock"),
            (format!("{BASE}ignore_waves = 1\n"), "ignore_waves"),
            (format!("{BASE}reboot_command = []\n"), "reboot_command"),
            (format!("{BASE}low_speed_limit = -1\n"), "low_speed_limit"),
            (
                format!("{BASE}low_speed_limit = \"fast\"\n"),
                "low_speed_limit",
            ),
            (format!("{BASE}low_speed_time = 0\n"), "low_speed_time"),
            (
                "metadata_base_url = \"ftp://h/\"\ntargets_base_url = \"http://h/t/\"\n"
                    .to_string(),
                "metadata_base_url",
            ),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("field '{field}'")), "{err}");
            assert_eq!(err.lines().count(), 1);
        }
        let err = parse("seed = = 1").unwrap_err().to_string();
        assert!(
            err.starts_with("Failed to parse config 'updog.toml'"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }

    /// Found by fuzzing (`fuzz/regressions/updog_config/`): a quoted value holding a newline
    /// was copied into the message as it was, so the one-line error spanned two lines.
    #[test]
    fn a_value_with_a_newline_is_quoted_escaped_on_one_line() {
        for (text, expected) in [
            (
                "metadata_base_url = \"httxs://h/\\n\"\ntargets_base_url = \"http://h/t/\"\n"
                    .to_string(),
                "Failed to read config 'updog.toml': field 'metadata_base_url': \
                 'httxs://h/\\n': scheme 'httxs' is not http, https or file",
            ),
            (
                "metadata_base_url = \"\\n\"\ntargets_base_url = \"http://h/t/\"\n".to_string(),
                "Failed to read config 'updog.toml': field 'metadata_base_url': \
                 '\\n': relative URL without a base",
            ),
            (
                format!("{BASE}https_proxy = \"a\\nb\"\n"),
                "Failed to read config 'updog.toml': field 'https_proxy': \
                 'a\\nb': relative URL without a base",
            ),
            (
                format!("{BASE}version_lock = \"1.0\\n\"\n"),
                "Failed to read config 'updog.toml': field 'version_lock': \
                 '1.0\\n' is neither 'latest' nor a version",
            ),
        ] {
            assert_eq!(parse(&text).unwrap_err().to_string(), expected);
        }
    }
}
