//! A local HTTP endpoint standing in for CloudFormation's pre-signed S3
//! `ResponseURL`: it records every request (method, path, Content-Type,
//! body) and answers 200, or 503 for the next `fail_next(n)` requests (S3
//! does, now and then). Runs on its own thread and runtime.

#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

/// One request received.
#[derive(Debug, Clone)]
pub struct Put {
    pub method: String,
    pub path: String,
    /// `None` when the header was not sent.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Put {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct State {
    puts: Vec<Put>,
    fail: usize,
}

pub struct CfnEndpoint {
    addr: String,
    shared: Arc<(Mutex<State>, Condvar)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CfnEndpoint {
    pub fn start() -> CfnEndpoint {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap().to_string()).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let s = s.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| record(s.clone(), req));
                                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                            });
                        }
                    }
                }
            });
        });
        CfnEndpoint {
            addr: addr_rx.recv().unwrap(),
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// A pre-signed-looking URL for one response.
    pub fn url(&self, name: &str) -> String {
        format!(
            "http://{}/cloudformation-custom-resource-response-useast1/{name}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123abcd",
            self.addr
        )
    }

    /// Answers 503 to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.shared.0.lock().unwrap().fail = n;
    }

    /// Every request whose path ends in `/name`.
    pub fn puts(&self, name: &str) -> Vec<Put> {
        let suffix = format!("/{name}");
        self.shared
            .0
            .lock()
            .unwrap()
            .puts
            .iter()
            .filter(|p| p.path.ends_with(&suffix))
            .cloned()
            .collect()
    }

    /// Waits for the first request for `name`.
    pub fn wait(&self, name: &str, timeout: Duration) -> Put {
        let until = Instant::now() + timeout;
        let suffix = format!("/{name}");
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap();
        loop {
            if let Some(p) = st.puts.iter().find(|p| p.path.ends_with(&suffix)) {
                return p.clone();
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no CloudFormation response for {name} within {} s",
                timeout.as_secs()
            );
            st = cv.wait_timeout(st, left).unwrap().0;
        }
    }
}

impl Drop for CfnEndpoint {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn record(s: Arc<(Mutex<State>, Condvar)>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let (lock, cv) = &*s;
    let mut st = lock.lock().unwrap();
    if st.fail > 0 {
        st.fail -= 1;
        return Ok(Response::builder().status(503).body(Full::new(Bytes::from("SlowDown"))).unwrap());
    }
    st.puts.push(Put {
        method,
        path,
        content_type,
        body,
    });
    drop(st);
    cv.notify_all();
    Ok(Response::builder().status(200).body(Full::new(Bytes::new())).unwrap())
}
