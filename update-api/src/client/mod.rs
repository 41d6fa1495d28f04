//! The client side: HTTP/1.1 over the API's Unix socket (hyper), as Bottlerocket's apiclient
//! talks to its apiserver.

pub mod update;

use crate::error::{self, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use snafu::ResultExt;
use std::path::Path;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(socket: &Path, method: &str, uri: &str) -> Result<Sender> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .context(error::SocketSnafu {
            verb: "connect to",
            path: socket,
        })?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context(error::HttpSnafu { method, uri })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(sender)
}

async fn send(
    socket: &Path,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let mut sender = connect(socket, method, uri).await?;
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(hyper::header::HOST, "localhost");
    if body.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context(error::BuildRequestSnafu { method, uri })?;
    sender
        .send_request(request)
        .await
        .context(error::HttpSnafu { method, uri })
}

/// Sends one request and returns the status code and body, whatever the code.
pub async fn request_unchecked(
    socket: &Path,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> Result<(StatusCode, String)> {
    let response = send(socket, method, uri, body).await?;
    let code = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .context(error::HttpSnafu { method, uri })?
        .to_bytes();
    Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Sends one request; a code other than 2xx is [`Error::Status`](crate::Error::Status),
/// whose message carries `Status <code>` as Bottlerocket's apiclient prints it.
pub async fn request(
    socket: &Path,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> Result<String> {
    let (code, body) = request_unchecked(socket, method, uri, body).await?;
    if code.is_success() {
        Ok(body)
    } else {
        error::StatusSnafu {
            method,
            uri,
            code: code.as_u16(),
            body: body.trim_end().to_string(),
        }
        .fail()
    }
}

/// `GET uri` and calls `line` with each line of the streamed body until it ends.
pub async fn stream_lines(socket: &Path, uri: &str, mut line: impl FnMut(&str)) -> Result<()> {
    let response = send(socket, "GET", uri, None).await?;
    let code = response.status();
    if !code.is_success() {
        return error::StatusSnafu {
            method: "GET",
            uri,
            code: code.as_u16(),
            body: String::new(),
        }
        .fail();
    }
    let mut body = response.into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context(error::HttpSnafu { method: "GET", uri })?;
        if let Some(data) = frame.data_ref() {
            pending.extend_from_slice(data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let text: Vec<u8> = pending.drain(..=end).collect();
                line(String::from_utf8_lossy(&text).trim_end());
            }
        }
    }
    Ok(())
}
