//! The transport tough fetches through: reqwest for `http(s)://`, the local file for `file://`
//! (offline repositories; the URL is decoded as a file path, so a target name with a space or
//! another escaped character is found).
//!
//! HTTP has a connect timeout, an idle timeout per read and a minimum rate, and no
//! whole-request timeout: a stalled transfer times out, and so does one that trickles (fewer
//! than [`HttpSettings::low_speed_limit`] bytes a second over [`HttpSettings::low_speed_time`]
//! of waiting for the network), while a large one on a slow link does not. Failed requests
//! (connection errors, 5xx, 429) are retried with exponential backoff. A connection dropped
//! mid-body, or cut off below the minimum rate, is resumed with `Range: bytes=<offset>-` from
//! the byte reached (or restarted, skipping what was already delivered, if the server ignores
//! Range), up to the same number of tries; then the stream ends with an error naming the URL.
//! Bytes are handed on through a small channel, so a slow consumer slows the download instead
//! of growing memory.
//!
//! A transport keeps the body of every JSON file it fetched whole over HTTP (the TUF metadata,
//! the manifest, chunk indexes; at most [`KEPT_MAX`] bytes each) and answers a second fetch of
//! the same URL from memory. tough's `cache_metadata` fetches timestamp, snapshot and targets
//! again, one after another, after loading them: from memory those are the very bytes that were
//! verified (a repository refreshed in between cannot leave the cache with a timestamp that
//! names a snapshot it does not hold), and they cost no round trip. A transport lives for one
//! refresh ([`Updater::refresh`](crate::Updater::refresh)): the next refresh fetches anew.

use crate::config::Config;
use crate::error::{self, Result};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Client, StatusCode};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tough::{Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

/// Timeouts and retries of HTTP fetches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpSettings {
    /// Connecting (TCP and TLS) must finish within this.
    pub connect_timeout: Duration,
    /// Each read must deliver something within this.
    pub read_timeout: Duration,
    /// A body must deliver at least this many bytes a second, on average over each
    /// `low_speed_time` spent waiting for it (time spent waiting for our own writer does not
    /// count).
    pub low_speed_limit: u64,
    /// The window of [`HttpSettings::low_speed_limit`].
    pub low_speed_time: Duration,
    /// How many times a request (or a resumed body) is tried in all.
    pub tries: u32,
    /// The pause after the first failure.
    pub initial_backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            low_speed_limit: 1024,
            low_speed_time: Duration::from_secs(60),
            tries: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl HttpSettings {
    /// The defaults, with updog.toml's `low_speed_limit` and `low_speed_time` and then the
    /// environment's `UPDOG_READ_TIMEOUT_MS`, `UPDOG_LOW_SPEED_LIMIT` (bytes a second) and
    /// `UPDOG_LOW_SPEED_TIME_MS` (tests shorten them) over them.
    pub fn from_config(config: &Config) -> HttpSettings {
        let mut settings = HttpSettings::default();
        if let Some(limit) = config.low_speed_limit {
            settings.low_speed_limit = limit;
        }
        if let Some(secs) = config.low_speed_time {
            settings.low_speed_time = Duration::from_secs(secs);
        }
        settings.with_env()
    }

    /// The defaults with the environment's overrides (see [`HttpSettings::from_config`]).
    pub fn from_env() -> HttpSettings {
        HttpSettings::default().with_env()
    }

    fn with_env(mut self) -> HttpSettings {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        if let Some(ms) = number("UPDOG_READ_TIMEOUT_MS") {
            self.read_timeout = Duration::from_millis(ms);
        }
        if let Some(limit) = number("UPDOG_LOW_SPEED_LIMIT") {
            self.low_speed_limit = limit;
        }
        if let Some(ms) = number("UPDOG_LOW_SPEED_TIME_MS") {
            self.low_speed_time = Duration::from_millis(ms);
        }
        self
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The largest body a transport keeps for a second fetch of its URL.
pub const KEPT_MAX: usize = 16 << 20;

/// updog's transport: HTTP(S) through reqwest, `file://` through tough.
#[derive(Debug, Clone)]
pub struct UpdogTransport {
    client: Client,
    settings: HttpSettings,
    /// Whole bodies of the JSON files fetched so far, by URL (shared by clones).
    kept: Arc<Mutex<HashMap<Url, Bytes>>>,
}

impl UpdogTransport {
    /// A transport honouring the config's `https_proxy` and `no_proxy` (and nothing from the
    /// environment).
    pub fn new(config: &Config, settings: HttpSettings) -> Result<UpdogTransport> {
        let mut builder = Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .no_proxy();
        if let Some(proxy_url) = &config.https_proxy {
            let mut proxy =
                reqwest::Proxy::all(proxy_url.as_str()).map_err(|e| error::Error::HttpClient {
                    reason: format!("https_proxy '{proxy_url}': {e}"),
                })?;
            if !config.no_proxy.is_empty() {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(&config.no_proxy.join(",")));
            }
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(|e| error::Error::HttpClient {
            reason: e.to_string(),
        })?;
        Ok(UpdogTransport {
            client,
            settings,
            kept: Arc::default(),
        })
    }

    /// Whether a whole body fetched from `url` is kept for a second fetch.
    fn keeps(url: &Url) -> bool {
        url.path().ends_with(".json")
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Url, Bytes>> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends a GET for `url` from byte `offset`, retrying what can be retried. Returns the
    /// response and how many leading bytes of its body to skip (when a server ignored Range).
    async fn request(
        &self,
        url: &Url,
        offset: u64,
    ) -> Result<(reqwest::Response, u64), TransportError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.client.get(url.clone());
            if offset > 0 {
                request = request.header(RANGE, format!("bytes={offset}-"));
            }
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
                        return Err(TransportError::new_with_cause(
                            TransportErrorKind::FileNotFound,
                            url,
                            format!("HTTP {status}"),
                        ));
                    }
                    if offset > 0 && status == StatusCode::PARTIAL_CONTENT {
                        let starts_at = response
                            .headers()
                            .get(CONTENT_RANGE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("bytes "))
                            .and_then(|v| v.split('-').next())
                            .and_then(|v| v.parse::<u64>().ok());
                        if starts_at == Some(offset) {
                            return Ok((response, 0));
                        }
                        format!("the server resumed at {starts_at:?}, not at byte {offset}")
                    } else if status == StatusCode::OK {
                        return Ok((response, offset));
                    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        format!("HTTP {status}")
                    } else {
                        return Err(TransportError::new_with_cause(
                            TransportErrorKind::Other,
                            url,
                            format!("HTTP {status}"),
                        ));
                    }
                }
                Err(e) => one_line_error(&e),
            };
            if attempt >= self.settings.tries {
                return Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    url,
                    format!("{failure} (after {attempt} tries)"),
                ));
            }
            tracing::debug!("fetching {url} from byte {offset}: {failure}; retrying");
            tokio::time::sleep(self.settings.backoff(attempt)).await;
        }
    }

    /// Sends a GET for bytes `start..end` of `url`, retrying what can be retried. `Ok(None)`:
    /// the server answered 200 with the whole file (it does not do Range requests).
    pub(crate) async fn get_range(
        &self,
        url: &Url,
        start: u64,
        end: u64,
    ) -> Result<Option<reqwest::Response>, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self
                .client
                .get(url.clone())
                .header(RANGE, format!("bytes={start}-{}", end.saturating_sub(1)));
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::PARTIAL_CONTENT {
                        let range = response
                            .headers()
                            .get(CONTENT_RANGE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("bytes "))
                            .and_then(|v| v.split('/').next())
                            .and_then(|v| v.split_once('-'))
                            .and_then(|(a, b)| {
                                Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
                            });
                        if range == Some((start, end - 1)) {
                            return Ok(Some(response));
                        }
                        return Err(format!("the server answered range {range:?}"));
                    } else if status == StatusCode::OK {
                        return Ok(None);
                    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        format!("HTTP {status}")
                    } else {
                        return Err(format!("HTTP {status}"));
                    }
                }
                Err(e) => one_line_error(&e),
            };
            if attempt >= self.settings.tries {
                return Err(format!("{failure} (after {attempt} tries)"));
            }
            tracing::debug!("fetching {url} bytes {start}..{end}: {failure}; retrying");
            tokio::time::sleep(self.settings.backoff(attempt)).await;
        }
    }

    /// How many times a request is tried in all.
    pub(crate) fn tries(&self) -> u32 {
        self.settings.tries
    }

    /// A new rate check for one response's body.
    pub(crate) fn meter(&self) -> RateMeter {
        RateMeter {
            limit: self.settings.low_speed_limit,
            window: self.settings.low_speed_time,
            waited: Duration::ZERO,
            bytes: 0,
        }
    }

    /// Pumps the body of `response` (and its resumptions) into `tx`.
    async fn pump(
        self,
        url: Url,
        mut response: reqwest::Response,
        mut skip: u64,
        tx: tokio::sync::mpsc::Sender<Result<Bytes, TransportError>>,
    ) {
        let mut offset = 0u64;
        let mut resumes = 0u32;
        let mut meter = self.meter();
        let mut body = Self::keeps(&url).then(bytes::BytesMut::new);
        loop {
            match meter.next(&mut response).await {
                Ok(Some(mut chunk)) => {
                    if skip > 0 {
                        let drop = skip.min(chunk.len() as u64);
                        let _ = chunk.split_to(drop as usize);
                        skip -= drop;
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    offset += chunk.len() as u64;
                    if let Some(b) = &mut body {
                        if b.len() + chunk.len() > KEPT_MAX {
                            body = None;
                        } else {
                            b.extend_from_slice(&chunk);
                        }
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return; // The consumer stopped listening.
                    }
                }
                Ok(None) => {
                    if let Some(b) = body {
                        self.kept().insert(url, b.freeze());
                    }
                    return;
                }
                Err(reason) => {
                    resumes += 1;
                    if resumes >= self.settings.tries {
                        let err = TransportError::new_with_cause(
                            TransportErrorKind::Other,
                            &url,
                            format!("{reason} at byte {offset} (after {resumes} tries)"),
                        );
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                    tracing::info!("{url}: {reason} at byte {offset}; resuming");
                    tokio::time::sleep(self.settings.backoff(resumes)).await;
                    match self.request(&url, offset).await {
                        Ok((next, next_skip)) => {
                            response = next;
                            skip = next_skip;
                            meter = self.meter();
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err)).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Transport for UpdogTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        match url.scheme() {
            "file" => fetch_file(url).await,
            "http" | "https" => {
                let kept = self.kept().get(&url).cloned();
                if let Some(body) = kept {
                    tracing::debug!("{url}: answered from this refresh's copy");
                    return Ok(Box::pin(futures_util::stream::once(async { Ok(body) })));
                }
                let (response, skip) = self.request(&url, 0).await?;
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                tokio::spawn(self.clone().pump(url, response, skip, tx));
                Ok(Box::pin(ChannelStream(rx)))
            }
            _ => Err(TransportError::new(
                TransportErrorKind::UnsupportedUrlScheme,
                url,
            )),
        }
    }
}

/// Reads a `file://` URL. tough's `FilesystemTransport` opens the URL's path as it is written,
/// so `a%20b` is looked for instead of `a b`; the path is decoded here.
async fn fetch_file(url: Url) -> Result<TransportStream, TransportError> {
    use tokio::io::AsyncReadExt;
    const READ: usize = 64 * 1024;
    let Ok(path) = url.to_file_path() else {
        return Err(TransportError::new_with_cause(
            TransportErrorKind::Other,
            &url,
            "not a local file path",
        ));
    };
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            TransportErrorKind::FileNotFound
        } else {
            TransportErrorKind::Other
        };
        TransportError::new_with_cause(kind, &url, e)
    })?;
    let stream = futures_util::stream::try_unfold((file, url), |(mut file, url)| async move {
        let mut buf = vec![0u8; READ];
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| TransportError::new_with_cause(TransportErrorKind::Other, &url, e))?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, url))))
    });
    Ok(Box::pin(stream))
}

/// The receiving end of a pump, as a stream.
struct ChannelStream(tokio::sync::mpsc::Receiver<Result<Bytes, TransportError>>);

impl Stream for ChannelStream {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Reads a body piece by piece and fails it when it trickles: fewer than `limit` bytes a second
/// over a `window` of time spent waiting for it.
#[derive(Debug)]
pub(crate) struct RateMeter {
    limit: u64,
    window: Duration,
    /// Time spent waiting for the body in the current window, and the bytes it delivered.
    waited: Duration,
    bytes: u64,
}

impl RateMeter {
    /// The body's next piece, `Ok(None)` at its end; `Err` names what went wrong, on one line.
    pub(crate) async fn next(
        &mut self,
        response: &mut reqwest::Response,
    ) -> Result<Option<Bytes>, String> {
        if self.limit == 0 || self.window.is_zero() {
            return response.chunk().await.map_err(|e| one_line_error(&e));
        }
        loop {
            let left = self.window.saturating_sub(self.waited);
            let started = std::time::Instant::now();
            // `chunk` may be dropped unfinished: a body keeps what it has not handed out.
            let piece = tokio::time::timeout(left, response.chunk()).await;
            self.waited += started.elapsed();
            match piece {
                Ok(Ok(Some(piece))) => {
                    self.bytes += piece.len() as u64;
                    self.check()?;
                    return Ok(Some(piece));
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => return Err(one_line_error(&e)),
                Err(_) => self.check()?,
            }
        }
    }

    /// At the end of a window: fails if the body was too slow in it, else starts the next.
    fn check(&mut self) -> Result<(), String> {
        if self.waited < self.window {
            return Ok(());
        }
        let needed = u128::from(self.limit) * self.waited.as_millis() / 1000;
        if u128::from(self.bytes) < needed {
            return Err(format!(
                "the transfer is slower than {} bytes/s ({} bytes in {:.1} s)",
                self.limit,
                self.bytes,
                self.waited.as_secs_f64()
            ));
        }
        self.waited = Duration::ZERO;
        self.bytes = 0;
        Ok(())
    }
}

/// A reqwest error with its causes, on one line.
fn one_line_error(e: &reqwest::Error) -> String {
    crate::config::one_line(&update_metadata::error::error_chain(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_judged_at_the_end_of_each_window_of_waiting() {
        let mut meter = RateMeter {
            limit: 1000,
            window: Duration::from_secs(2),
            waited: Duration::from_secs(1),
            bytes: 10,
        };
        // Half a window: too early to say.
        assert!(meter.check().is_ok());
        meter.waited = Duration::from_secs(2);
        meter.bytes = 1999;
        let reason = meter.check().unwrap_err();
        assert!(
            reason.contains("slower than 1000 bytes/s (1999 bytes in 2.0 s)"),
            "{reason}"
        );
        // Exactly the rate passes, and the next window starts from nothing.
        meter.bytes = 2000;
        assert!(meter.check().is_ok());
        assert_eq!((meter.waited, meter.bytes), (Duration::ZERO, 0));
    }

    #[tokio::test]
    async fn a_file_url_with_an_escaped_name_is_read() {
        use futures_util::TryStreamExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.0.0 to 1.1.0.json");
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &body).unwrap();
        let url = Url::from_file_path(&path).unwrap();
        assert!(url.as_str().contains("%20"), "{url}");
        let chunks: Vec<Bytes> = fetch_file(url).await.unwrap().try_collect().await.unwrap();
        assert_eq!(chunks.concat(), body);
        let missing = Url::from_file_path(dir.path().join("no such file")).unwrap();
        let Err(err) = fetch_file(missing).await else {
            panic!("a missing file was read");
        };
        assert_eq!(err.kind(), TransportErrorKind::FileNotFound);
    }
}
