//! A transport that hands every fetch to updog's transport and keeps the bytes of each metadata
//! file it delivered in full, so the metadata directory gets the exact bytes the repository
//! served (tough's datastore holds re-serialised copies).
//!
//! It also asks for hash-prefixed targets below a directory by the specification's name: tough
//! 0.24 puts the hash before the whole target path (`<sha256>.dir/file`), the specification
//! before the file name (`dir/<sha256>.file`). The specification's name is tried first, tough's
//! when that is not found; either way tough checks the length and hash of what arrives.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tough::{Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

/// The metadata files fetched in full, in the order they ended: (URL, bytes).
pub type FetchLog = Arc<Mutex<Vec<(Url, Vec<u8>)>>>;

/// Wraps a transport; records complete bodies of URLs under `metadata_base`.
#[derive(Debug, Clone)]
pub struct RecordingTransport<T> {
    inner: T,
    metadata_base: String,
    targets_base: Option<String>,
    log: FetchLog,
}

impl<T> RecordingTransport<T> {
    /// Records fetches under `metadata_base` (a URL ending in `/`).
    pub fn new(inner: T, metadata_base: &Url) -> Self {
        RecordingTransport {
            inner,
            metadata_base: metadata_base.to_string(),
            targets_base: None,
            log: FetchLog::default(),
        }
    }

    /// Also maps hash-prefixed targets under `targets_base` (a URL ending in `/`) to the
    /// specification's names.
    #[must_use]
    pub fn with_targets_base(mut self, targets_base: &Url) -> Self {
        self.targets_base = Some(targets_base.to_string());
        self
    }

    /// The shared log (it fills as tough reads).
    pub fn log(&self) -> FetchLog {
        self.log.clone()
    }
}

#[async_trait]
impl<T: Transport + Clone + 'static> Transport for RecordingTransport<T> {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        if let Some(spec_url) = self
            .targets_base
            .as_deref()
            .and_then(|base| spec_target_url(base, &url))
        {
            match self.inner.fetch(spec_url).await {
                Err(e) if e.kind() == TransportErrorKind::FileNotFound => {}
                other => return other,
            }
        }
        let stream = self.inner.fetch(url.clone()).await?;
        if !url.as_str().starts_with(&self.metadata_base) {
            return Ok(stream);
        }
        Ok(Box::pin(Tee {
            inner: stream,
            url,
            buf: Vec::new(),
            failed: false,
            log: self.log.clone(),
        }))
    }
}

/// For `<base><sha256 hex>.<dir>/<file>`, the specification's `<base><dir>/<sha256 hex>.<file>`.
pub fn spec_target_url(base: &str, url: &Url) -> Option<Url> {
    let rest = url.as_str().strip_prefix(base)?;
    let (hash, path) = rest.split_once('.')?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (dir, file) = path.rsplit_once('/')?;
    Url::parse(&format!("{base}{dir}/{hash}.{file}")).ok()
}

/// Passes a stream through, keeping a copy that is logged when the stream ends cleanly.
struct Tee {
    inner: TransportStream,
    url: Url,
    buf: Vec<u8>,
    failed: bool,
    log: FetchLog,
}

impl Stream for Tee {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => this.buf.extend_from_slice(chunk),
            Poll::Ready(Some(Err(_))) => this.failed = true,
            Poll::Ready(None) if !this.failed => {
                let bytes = std::mem::take(&mut this.buf);
                this.log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((this.url.clone(), bytes));
                this.failed = true; // Log once.
            }
            _ => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hash_prefixes_move_to_the_file_name() {
        let base = "http://h/targets/";
        let hash = "a".repeat(64);
        let url = Url::parse(&format!("{base}{hash}.dir/sub/file.txt")).unwrap();
        assert_eq!(
            spec_target_url(base, &url).unwrap().as_str(),
            format!("{base}dir/sub/{hash}.file.txt")
        );
        // Flat names are the same either way; names without a hash prefix are left alone.
        let flat = Url::parse(&format!("{base}{hash}.file.txt")).unwrap();
        assert!(spec_target_url(base, &flat).is_none());
        let plain = Url::parse(&format!("{base}dir/file.txt")).unwrap();
        assert!(spec_target_url(base, &plain).is_none());
        let other = Url::parse(&format!("http://h/metadata/{hash}.dir/file")).unwrap();
        assert!(spec_target_url(base, &other).is_none());
    }
}
