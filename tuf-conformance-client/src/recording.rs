//! A transport that hands every fetch to updog's transport and keeps the bytes of each metadata
//! file it delivered in full, so the metadata directory gets the exact bytes the repository
//! served (tough's datastore holds re-serialised copies).

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tough::{Transport, TransportError, TransportStream};
use url::Url;

/// The metadata files fetched in full, in the order they ended: (URL, bytes).
pub type FetchLog = Arc<Mutex<Vec<(Url, Vec<u8>)>>>;

/// Wraps a transport; records complete bodies of URLs under `metadata_base`.
#[derive(Debug, Clone)]
pub struct RecordingTransport<T> {
    inner: T,
    metadata_base: String,
    log: FetchLog,
}

impl<T> RecordingTransport<T> {
    /// Records fetches under `metadata_base` (a URL ending in `/`).
    pub fn new(inner: T, metadata_base: &Url) -> Self {
        RecordingTransport {
            inner,
            metadata_base: metadata_base.to_string(),
            log: FetchLog::default(),
        }
    }

    /// The shared log (it fills as tough reads).
    pub fn log(&self) -> FetchLog {
        self.log.clone()
    }
}

#[async_trait]
impl<T: Transport + Clone + 'static> Transport for RecordingTransport<T> {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
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
