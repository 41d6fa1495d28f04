//! `etc/updog.toml`.

use std::path::Path;
use updog::Config;

/// Parses `data` as updog's config. An error is one line; what parses has base URLs that end
/// in `/` (so target names join below them), a seed in range and a reboot command.
pub fn updog_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new("/etc/updog.toml")) {
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n'),
                "a config error spans lines: {message:?}"
            );
        }
        Ok(config) => {
            assert!(config.metadata_base_url.path().ends_with('/'));
            assert!(config.targets_base_url.path().ends_with('/'));
            assert!(config.seed.is_none_or(|s| s.get() < 2048));
            assert!(config.reboot_command.first().is_some_and(|w| !w.is_empty()));
            assert!(config.no_proxy.iter().all(|h| !h.is_empty()));
        }
    }
}
