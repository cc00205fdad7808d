//! A small HTTP(S) client for what the Lambda handler sends outside the
//! Runtime API: the CloudFormation response (a PUT to a pre-signed S3 URL)
//! and the init error. hyper with rustls (ring) and the system's roots: the
//! same stack the AWS SDK uses here, so nothing new is compiled.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Sends one request and returns the status and the body (as text, cut at
/// 2 KiB); an error is one readable line.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>, timeout: Duration) -> Result<(u16, String), String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-length", body.len().to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("invalid request to {}: {e}", redact(url)))?;
    let call = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("{} {}: {}", method, redact(url), error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let mut text = String::from_utf8_lossy(&body).into_owned();
        if text.len() > 2048 {
            let mut cut = 2048;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Ok((status, text))
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(format!("{method} {}: no answer within {} s", redact(url), timeout.as_secs())),
    }
}

/// A pre-signed URL without its query (the signature): what a log may show.
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((head, _)) => format!("{head}?…"),
        None => url.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        source = s.source();
    }
    out
}
