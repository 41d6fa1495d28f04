//! A real HTTP server on loopback serving a directory (tower-http's `ServeDir`, which answers
//! Range requests), with faults a test can inject per path: a dropped connection, a stalled
//! transfer, a transfer paused until the test resumes it, endless data, a replaced body, an error
//! status, Range support switched off; and, for every answer, the latency of a distant server
//! and a link of limited rate that all bodies share. For benchmarks it can also answer from a
//! copy of each file in memory ([`HttpServer::serve_from_memory`]).

use crate::error::{self, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use bytes::Bytes;
use futures_util::StreamExt;
use snafu::ResultExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tower_http::services::ServeDir;

/// A fault to inject into the answers for matching paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Send the headers and the first `n` bytes of the body, then drop the connection.
    DropAfter(u64),
    /// Send the first `n` bytes, then nothing for the duration, then the rest.
    StallAfter(u64, Duration),
    /// Send the first `n` bytes, then the rest [`TRICKLE`] bytes at a time, one piece per
    /// interval: a server that never stalls long enough for a read timeout but never delivers.
    TrickleAfter(u64, Duration),
    /// Send the first `n` bytes, then nothing until [`HttpServer::resume`], then the rest: a
    /// transfer that is in flight for exactly as long as a test needs, without a timer.
    PauseAfter(u64),
    /// Answer with this status and no body.
    Status(u16),
    /// Answer 200 with an endless body of zeros and no length.
    Endless,
    /// Answer as without a fault: a rule for so many answers that lets the next rule apply to
    /// the answers after them.
    Pass,
    /// Answer 200 with these bytes instead of the file.
    Replace(Vec<u8>),
    /// Ignore Range headers: answer every request with the whole file.
    NoRange,
}

/// The bytes a [`Fault::TrickleAfter`] body sends at a time.
pub const TRICKLE: usize = 16;

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The path, e.g. `/targets/<sha>.manifest.json`.
    pub path: String,
    /// The Range header, if any.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
    /// The bytes of body sent (as far as the server got).
    pub body_bytes: u64,
}

impl LoggedRequest {
    /// The first and last byte its Range header asked for (`bytes=<first>-<last>`, the last
    /// `None` when open-ended); `None` without one, or with a form the tests never send.
    pub fn range_bounds(&self) -> Option<(u64, Option<u64>)> {
        let (first, last) = self
            .range
            .as_deref()?
            .strip_prefix("bytes=")?
            .split_once('-')?;
        let last = match last {
            "" => None,
            last => Some(last.parse().ok()?),
        };
        Some((first.parse().ok()?, last))
    }

    /// How many bytes its Range header asked for (`None` without one, or when open-ended).
    pub fn range_len(&self) -> Option<u64> {
        let (first, last) = self.range_bounds()?;
        Some(last?.checked_sub(first)? + 1)
    }
}

#[derive(Debug, Clone)]
struct Rule {
    suffix: String,
    fault: Fault,
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Arc<Mutex<LoggedRequest>>>>,
    /// Bumped by every resume; a paused body waits for it to move past the value it saw.
    resumes: AtomicU64,
    /// Bodies waiting at their pause now.
    paused: AtomicUsize,
    /// How long every answer waits before its headers, in microseconds.
    latency_us: AtomicU64,
    /// The link's rate in bytes a second (0: no limit), and when it is next free.
    link_rate: AtomicU64,
    link_free: Mutex<Option<tokio::time::Instant>>,
}

/// The most a body sends in one turn of the link.
const LINK_PIECE: usize = 16 << 10;

/// An HTTP server on `127.0.0.1`, serving one directory until dropped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    root: PathBuf,
    shared: Arc<Shared>,
    memory: Option<Arc<Memory>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `root` on a free port of 127.0.0.1.
    pub fn serve(root: &Path) -> Result<HttpServer> {
        HttpServer::start(root, None)
    }

    /// Serves `root` as [`HttpServer::serve`] does, but answers a GET or HEAD of a regular file,
    /// whole or one byte range, from a copy of the file in memory: read once, and again when its
    /// length, modification time or inode changes; at most 4 GiB of files in all,
    /// the least recently served dropped first. `ServeDir` answers everything else (a missing
    /// file, a directory, several ranges, a range that cannot be satisfied, a conditional
    /// request). Faults, latency and the link apply as they do to `serve`.
    ///
    /// For benchmarks: an answer then costs the machine a copy into the socket and nothing
    /// more, where `ServeDir` opens, seeks and reads the file through the runtime's blocking
    /// pool for every request. A node's repository is on another machine, so the server's cost
    /// per request is not the node's; measured on one machine, it would be taken from the
    /// install's own cores (docs/benchmarks.md, "The bench's server").
    pub fn serve_from_memory(root: &Path) -> Result<HttpServer> {
        HttpServer::start(root, Some(Arc::new(Memory::new(root))))
    }

    fn start(root: &Path, memory: Option<Arc<Memory>>) -> Result<HttpServer> {
        let shared = Arc::new(Shared::default());
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").context(error::ServerSnafu)?;
        std_listener
            .set_nonblocking(true)
            .context(error::ServerSnafu)?;
        let addr = std_listener.local_addr().context(error::ServerSnafu)?;
        // Reads of 1 MiB rather than the default 64 KiB: each read is a trip through the
        // runtime's blocking pool, which made this server, not the client, the slow end.
        let app = Router::new().fallback_service(ServeDir::new(root).with_buf_chunk_size(1 << 20));
        let app = match &memory {
            Some(memory) => app.layer(middleware::from_fn_with_state(memory.clone(), from_memory)),
            None => app,
        };
        let app = app.layer(middleware::from_fn_with_state(shared.clone(), inject));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context(error::ServerSnafu)?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                // As file servers do (nginx's `tcp_nodelay on`): without it, a small Range
                // answer waits for the client's delayed ACK.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        Ok(HttpServer {
            addr,
            root: root.to_path_buf(),
            shared,
            memory,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/` (with the trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// How many answers came from memory ([`HttpServer::serve_from_memory`]; 0 for
    /// [`HttpServer::serve`]).
    pub fn answered_from_memory(&self) -> u64 {
        self.memory
            .as_ref()
            .map_or(0, |m| m.answered.load(Ordering::SeqCst))
    }

    /// The address it listens on (127.0.0.1 and its port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Injects `fault` into answers for paths ending in `suffix`, for the next `times` requests
    /// (`None`: until cleared).
    pub fn inject(&self, suffix: &str, fault: Fault, times: Option<u32>) {
        lock(&self.shared.rules).push(Rule {
            suffix: suffix.to_string(),
            fault,
            remaining: times,
        });
    }

    /// How many responses are waiting at a [`Fault::PauseAfter`] now.
    pub fn paused(&self) -> usize {
        self.shared.paused.load(Ordering::SeqCst)
    }

    /// Lets every response waiting at a [`Fault::PauseAfter`] go on; a pause reached later
    /// waits for the next resume.
    pub fn resume(&self) {
        self.shared.resumes.fetch_add(1, Ordering::SeqCst);
    }

    /// Makes every answer from now on wait `latency` before its headers: one round trip to a
    /// distant server, paid once per request (the body then flows at loopback speed).
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(micros, Ordering::SeqCst);
    }

    /// Makes every body from now on go through one link of `bytes_per_second` that all bodies
    /// share, a piece at a time (0: no limit).
    pub fn set_link_rate(&self, bytes_per_second: u64) {
        self.shared
            .link_rate
            .store(bytes_per_second, Ordering::SeqCst);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log)
            .iter()
            .map(|entry| lock(entry).clone())
            .collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.resume();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    let index = rules.iter().position(|r| path.ends_with(&r.suffix))?;
    let rule = &mut rules[index];
    let fault = rule.fault.clone();
    if let Some(remaining) = &mut rule.remaining {
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            rules.remove(index);
        }
    }
    Some(fault)
}

async fn inject(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let entry = Arc::new(Mutex::new(LoggedRequest {
        path: path.clone(),
        range,
        status: 0,
        body_bytes: 0,
    }));
    lock(&shared.log).push(entry.clone());
    let latency = shared.latency_us.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    let fault = take_fault(&shared, &path);
    let response = match &fault {
        Some(Fault::Status(code)) => StatusCode::from_u16(*code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(Fault::Endless) => {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let stream = futures_util::stream::repeat(chunk).map(Ok::<_, std::io::Error>);
            Response::new(Body::from_stream(stream))
        }
        Some(Fault::Replace(bytes)) => {
            let mut response = Response::new(Body::from(bytes.clone()));
            if let Ok(len) = HeaderValue::from_str(&bytes.len().to_string()) {
                response.headers_mut().insert(header::CONTENT_LENGTH, len);
            }
            response
        }
        Some(Fault::NoRange) => {
            request.headers_mut().remove(header::RANGE);
            next.run(request).await
        }
        _ => next.run(request).await,
    };
    let (parts, body) = response.into_parts();
    let body = if shared.link_rate.load(Ordering::SeqCst) > 0 {
        through_link(body, shared.clone())
    } else {
        body
    };
    lock(&entry).status = parts.status.as_u16();
    let cut = match fault {
        Some(Fault::DropAfter(n)) => Some((n, Cut::Drop)),
        Some(Fault::StallAfter(n, d)) => Some((n, Cut::Stall(d))),
        Some(Fault::PauseAfter(n)) => Some((n, Cut::Pause(shared.clone()))),
        Some(Fault::TrickleAfter(n, every)) => Some((n, Cut::Trickle(every))),
        _ => None,
    };
    let counted = count_body(body, entry, cut);
    Response::from_parts(parts, counted)
}

/// The most bytes of files [`HttpServer::serve_from_memory`] keeps in memory.
const MEMORY_CAP: u64 = 4 << 30;

/// The files a [`HttpServer::serve_from_memory`] server keeps in memory.
#[derive(Debug)]
struct Memory {
    root: PathBuf,
    files: Mutex<HashMap<PathBuf, Kept>>,
    /// Counts answers: a file's last one orders what is dropped first.
    clock: AtomicU64,
    /// Answers given from memory.
    answered: AtomicU64,
}

#[derive(Debug)]
struct Kept {
    /// The inode, length and modification time the bytes were read at.
    identity: (u64, u64, SystemTime),
    bytes: Bytes,
    last_served: u64,
}

impl Memory {
    fn new(root: &Path) -> Memory {
        Memory {
            root: root.to_path_buf(),
            files: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        }
    }

    /// The file under the root that a request's path names, if it is one plainly: anything
    /// that needs decoding or could leave the root is `ServeDir`'s to answer.
    fn file(&self, path: &str) -> Option<PathBuf> {
        let mut file = self.root.clone();
        for part in path.strip_prefix('/')?.split('/') {
            if part.is_empty() || part == "." || part == ".." || part.contains(['%', '\\']) {
                return None;
            }
            file.push(part);
        }
        Some(file)
    }

    /// The bytes of `file` as it is now; `None` if it is not a regular file, is larger than the
    /// cap, or cannot be read.
    async fn bytes(&self, file: &Path) -> Option<Bytes> {
        let meta = std::fs::metadata(file).ok()?;
        if !meta.is_file() || meta.len() > MEMORY_CAP {
            return None;
        }
        let identity = (meta.ino(), meta.len(), meta.modified().ok()?);
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        if let Some(kept) = lock(&self.files).get_mut(file) {
            if kept.identity == identity {
                kept.last_served = now;
                return Some(kept.bytes.clone());
            }
        }
        // Read off the runtime's threads: an image takes a while. A file changed meanwhile has
        // another identity at the next request, which reads it again.
        let path = file.to_path_buf();
        let bytes = Bytes::from(
            tokio::task::spawn_blocking(move || std::fs::read(path))
                .await
                .ok()?
                .ok()?,
        );
        let mut files = lock(&self.files);
        files.insert(
            file.to_path_buf(),
            Kept {
                identity,
                bytes: bytes.clone(),
                last_served: now,
            },
        );
        while files.values().map(|k| k.bytes.len() as u64).sum::<u64>() > MEMORY_CAP {
            let oldest = files
                .iter()
                .min_by_key(|(_, k)| k.last_served)
                .map(|(path, _)| path.clone());
            match oldest {
                Some(path) => files.remove(&path),
                None => break,
            };
        }
        Some(bytes)
    }
}

/// Answers a GET or HEAD of a regular file from memory, whole or one range of it; hands every
/// other request to `ServeDir` (`next`).
async fn from_memory(State(memory): State<Arc<Memory>>, request: Request, next: Next) -> Response {
    let head = request.method() == axum::http::Method::HEAD;
    let conditional = [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ]
    .iter()
    .any(|h| request.headers().contains_key(h));
    if !(head || request.method() == axum::http::Method::GET) || conditional {
        return next.run(request).await;
    }
    let Some(file) = memory.file(request.uri().path()) else {
        return next.run(request).await;
    };
    let Some(bytes) = memory.bytes(&file).await else {
        return next.run(request).await;
    };
    let len = bytes.len() as u64;
    let (status, body, content_range) = match request.headers().get(header::RANGE) {
        None => (StatusCode::OK, bytes, None),
        Some(range) => {
            let one = range
                .to_str()
                .ok()
                .and_then(|r| http_range_header::parse_range_header(r).ok())
                .and_then(|r| r.validate(len).ok())
                .filter(|ranges| ranges.len() == 1 && len > 0);
            let Some(range) = one.and_then(|mut ranges| ranges.pop()) else {
                return next.run(request).await;
            };
            let (first, last) = range.into_inner();
            let part = bytes.slice(first as usize..=last as usize);
            let content_range = format!("bytes {first}-{last}/{len}");
            (StatusCode::PARTIAL_CONTENT, part, Some(content_range))
        }
    };
    memory.answered.fetch_add(1, Ordering::SeqCst);
    let content_length = body.len();
    let mut response = Response::new(if head {
        Body::empty()
    } else {
        Body::from(body)
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(range) = content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    response
}

/// Sends `body` through the shared link: each piece of at most [`LINK_PIECE`] bytes leaves once
/// the link has carried it, after the pieces of every body queued before it.
fn through_link(body: Body, shared: Arc<Shared>) -> Body {
    let pieces = body.into_data_stream().flat_map(|piece| {
        let mut out = Vec::new();
        match piece {
            Ok(mut bytes) => {
                while bytes.len() > LINK_PIECE {
                    out.push(Ok(bytes.split_to(LINK_PIECE)));
                }
                out.push(Ok(bytes));
            }
            Err(e) => out.push(Err(e)),
        }
        futures_util::stream::iter(out)
    });
    let paced = pieces.then(move |piece| {
        let shared = shared.clone();
        async move {
            if let Ok(bytes) = &piece {
                let rate = shared.link_rate.load(Ordering::SeqCst).max(1);
                let done = {
                    let mut free = lock(&shared.link_free);
                    let now = tokio::time::Instant::now();
                    let start = free.map_or(now, |f| f.max(now));
                    let done = start + Duration::from_secs_f64(bytes.len() as f64 / rate as f64);
                    *free = Some(done);
                    done
                };
                tokio::time::sleep_until(done).await;
            }
            piece
        }
    });
    Body::from_stream(paced)
}

/// What happens to a body at its cut.
#[derive(Debug, Clone)]
enum Cut {
    /// The connection is dropped.
    Drop,
    /// Nothing is sent for the duration.
    Stall(Duration),
    /// Nothing is sent until the server's next resume.
    Pause(Arc<Shared>),
    /// [`TRICKLE`] bytes per interval, to the end.
    Trickle(Duration),
}

/// Counts a body as paused while it lives (also when the client goes away mid-pause and the
/// body is dropped).
struct Paused<'a>(&'a Shared);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.paused.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits until `shared` is resumed after now, counted as paused meanwhile.
async fn pause(shared: &Shared) {
    let seen = shared.resumes.load(Ordering::SeqCst);
    shared.paused.fetch_add(1, Ordering::SeqCst);
    let _paused = Paused(shared);
    while shared.resumes.load(Ordering::SeqCst) == seen {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Counts the body bytes sent and applies a drop, a stall or a pause after `cut` bytes.
fn count_body(body: Body, entry: Arc<Mutex<LoggedRequest>>, cut: Option<(u64, Cut)>) -> Body {
    let stream = body.into_data_stream().boxed();
    let state = (stream, entry, cut, 0u64, false);
    let out =
        futures_util::stream::unfold(state, |(mut stream, entry, cut, sent, done)| async move {
            if done {
                return None;
            }
            let chunk = match stream.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    let err = std::io::Error::other(e.to_string());
                    return Some((Err(err), (stream, entry, cut, sent, true)));
                }
                None => return None,
            };
            let mut chunk = chunk;
            if let Some((limit, kind)) = cut.clone() {
                if sent >= limit {
                    match kind {
                        Cut::Drop => {
                            // Let the bytes already sent reach the client before the connection goes.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let err = std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "fault: connection dropped",
                            );
                            return Some((Err(err), (stream, entry, cut, sent, true)));
                        }
                        Cut::Stall(d) => tokio::time::sleep(d).await,
                        Cut::Pause(shared) => pause(&shared).await,
                        Cut::Trickle(every) => {
                            tokio::time::sleep(every).await;
                            let rest = chunk.split_off(chunk.len().min(TRICKLE));
                            let sent = sent + chunk.len() as u64;
                            lock(&entry).body_bytes = sent;
                            let stream = if rest.is_empty() {
                                stream
                            } else {
                                futures_util::stream::once(async move { Ok(rest) })
                                    .chain(stream)
                                    .boxed()
                            };
                            return Some((Ok(chunk), (stream, entry, cut, sent, false)));
                        }
                    }
                    // Stall or pause once; then send normally.
                    let next = (
                        stream,
                        entry.clone(),
                        None,
                        sent + chunk.len() as u64,
                        false,
                    );
                    lock(&entry).body_bytes = sent + chunk.len() as u64;
                    return Some((Ok(chunk), next));
                }
                let room = limit - sent;
                if (chunk.len() as u64) > room {
                    // Send what fits now; the rest follows after the stall, or never.
                    let rest = chunk.split_off(room as usize);
                    let sent = sent + chunk.len() as u64;
                    lock(&entry).body_bytes = sent;
                    let remaining =
                        futures_util::stream::once(async move { Ok::<_, axum::Error>(rest) });
                    let chained = remaining.chain(stream).boxed();
                    return Some((Ok(chunk), (chained, entry, cut, sent, false)));
                }
            }
            let sent = sent + chunk.len() as u64;
            lock(&entry).body_bytes = sent;
            Some((Ok(chunk), (stream, entry, cut, sent, false)))
        });
    Body::from_stream(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_read_as_their_bounds() {
        let logged = |range: Option<&str>| LoggedRequest {
            path: "/t".to_string(),
            range: range.map(str::to_string),
            status: 206,
            body_bytes: 0,
        };
        assert_eq!(logged(Some("bytes=5-9")).range_bounds(), Some((5, Some(9))));
        assert_eq!(
            logged(Some("bytes=4000-")).range_bounds(),
            Some((4000, None))
        );
        assert_eq!(logged(Some("bytes=-500")).range_bounds(), None);
        assert_eq!(logged(None).range_bounds(), None);
        assert_eq!(logged(Some("bytes=5-9")).range_len(), Some(5));
        assert_eq!(logged(Some("bytes=4000-")).range_len(), None);
        assert_eq!(logged(None).range_len(), None);
    }
}
