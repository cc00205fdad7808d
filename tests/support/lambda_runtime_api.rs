//! A fake AWS Lambda Runtime API (the custom runtime's side of Lambda) for
//! driving the real `chatmigrate lambda` process as a function:
//!
//! - `GET /2018-06-01/runtime/invocation/next` long-polls until the test
//!   queues an invocation, then answers with the event and the headers
//!   Lambda sends: `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms` (epoch ms), `Lambda-Runtime-Invoked-Function-Arn`,
//!   `Lambda-Runtime-Trace-Id`;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and
//!   `.../{id}/error` (with `Lambda-Runtime-Function-Error-Type`) record the
//!   invocation's answer (202; an unknown id is 400, as Lambda answers);
//! - `POST /2018-06-01/runtime/init/error` records an init error.
//!
//! It runs on its own thread and runtime, so sync tests can use it.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

/// The function's ARN in every invocation.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:chatmigrate";

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `/response`: the function's result.
    Response(Value),
    /// `/error`: the error type header and the body
    /// (`{"errorType", "errorMessage"}`).
    Error { error_type: String, body: Value },
}

impl Answer {
    pub fn response(&self) -> &Value {
        match self {
            Answer::Response(v) => v,
            Answer::Error { body, .. } => panic!("the invocation failed: {body}"),
        }
    }

    /// `(errorType, errorMessage)` of a failed invocation, from the body:
    /// what Lambda shows the caller. (The `lambda_runtime` crate sends the
    /// header `Lambda-Runtime-Function-Error-Type: unhandled` for every
    /// function error; Lambda accepts any value there.)
    pub fn error(&self) -> (String, String) {
        match self {
            Answer::Error { body, error_type } => {
                assert!(!error_type.is_empty(), "no Lambda-Runtime-Function-Error-Type header: {body}");
                let kind = body["errorType"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no errorType in the error body: {body}"));
                (kind.to_string(), body["errorMessage"].as_str().unwrap_or("").to_string())
            }
            Answer::Response(v) => panic!("the invocation succeeded: {v}"),
        }
    }
}

struct Pending {
    id: String,
    deadline_ms: u64,
    body: Vec<u8>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// Delivered and not answered yet.
    open: Vec<String>,
    answers: HashMap<String, Answer>,
    init_errors: Vec<(String, Value)>,
    /// When each `/next` request arrived.
    next_at: Vec<Instant>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the test thread (answers, init errors, `/next`).
    changed: Condvar,
    /// Wakes a waiting `/next`.
    queued: tokio::sync::Notify,
}

/// The server; stopped when dropped.
pub struct RuntimeApi {
    addr: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    counter: std::sync::atomic::AtomicUsize,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            queued: tokio::sync::Notify::new(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap().to_string()).unwrap();
                let mut stop_rx = stop_rx;
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let s = s.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| route(s.clone(), req));
                                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                            });
                        }
                    }
                }
            });
        });
        RuntimeApi {
            addr: addr_rx.recv().unwrap(),
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
            counter: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// Queues an invocation that has `time` until its deadline and waits
    /// for its answer (at most `time` + 30 s).
    pub fn invoke(&self, event: &Value, time: Duration) -> Answer {
        let id = self.queue(event, time);
        self.answer(&id, time + Duration::from_secs(30))
    }

    /// Queues an invocation; returns its request id.
    pub fn queue(&self, event: &Value, time: Duration) -> String {
        self.queue_raw(serde_json::to_vec(event).unwrap(), time)
    }

    /// Queues an invocation whose payload is these bytes (need not be JSON).
    pub fn queue_raw(&self, body: Vec<u8>, time: Duration) -> String {
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("8f5{n:05}-1c2d-4e5f-8a9b-{:012x}", std::process::id());
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        self.shared.state.lock().unwrap().queue.push_back(Pending {
            id: id.clone(),
            deadline_ms: now_ms + time.as_millis() as u64,
            body,
        });
        self.shared.queued.notify_one();
        id
    }

    /// Waits for the answer to invocation `id`.
    pub fn answer(&self, id: &str, timeout: Duration) -> Answer {
        let until = Instant::now() + timeout;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if let Some(a) = st.answers.remove(id) {
                return a;
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "invocation {id} got no answer within {} s", timeout.as_secs());
            st = self.shared.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    /// Waits for an init error: `(error type header, body)`.
    pub fn init_error(&self, timeout: Duration) -> Option<(String, Value)> {
        let until = Instant::now() + timeout;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if let Some(e) = st.init_errors.first() {
                return Some(e.clone());
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    /// Waits until the function asks for its first invocation; returns when it did.
    pub fn first_next(&self, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if let Some(t) = st.next_at.first() {
                return Some(*t);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    /// How many `/next` requests arrived.
    pub fn next_requests(&self) -> usize {
        self.shared.state.lock().unwrap().next_at.len()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn route(s: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    const BASE: &str = "/2018-06-01/runtime";
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let Some(rest) = path.strip_prefix(BASE) else {
        return Ok(reply(404, r#"{"errorMessage":"unknown path","errorType":"InvalidRequest"}"#));
    };
    if method == hyper::Method::GET && rest == "/invocation/next" {
        return Ok(next(&s).await);
    }
    if method == hyper::Method::POST && rest == "/init/error" {
        let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
        s.state.lock().unwrap().init_errors.push((error_type, v));
        s.changed.notify_all();
        return Ok(reply(202, r#"{"status":"OK"}"#));
    }
    if method == hyper::Method::POST {
        if let Some(tail) = rest.strip_prefix("/invocation/") {
            let (id, what) = tail.split_once('/').unwrap_or((tail, ""));
            let mut st = s.state.lock().unwrap();
            let Some(pos) = st.open.iter().position(|o| o == id) else {
                return Ok(reply(
                    400,
                    r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
                ));
            };
            let answer = match what {
                "response" => Answer::Response(
                    serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
                ),
                "error" => Answer::Error {
                    error_type,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                },
                _ => return Ok(reply(404, r#"{"errorMessage":"unknown path","errorType":"InvalidRequest"}"#)),
            };
            st.open.remove(pos);
            st.answers.insert(id.to_string(), answer);
            drop(st);
            s.changed.notify_all();
            return Ok(reply(202, r#"{"status":"OK"}"#));
        }
    }
    Ok(reply(404, r#"{"errorMessage":"unknown path","errorType":"InvalidRequest"}"#))
}

/// The long poll of `/next`.
async fn next(s: &Shared) -> Response<Full<Bytes>> {
    {
        s.state.lock().unwrap().next_at.push(Instant::now());
        s.changed.notify_all();
    }
    loop {
        let notified = s.queued.notified();
        if let Some(p) = {
            let mut st = s.state.lock().unwrap();
            let p = st.queue.pop_front();
            if let Some(p) = &p {
                st.open.push(p.id.clone());
            }
            p
        } {
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &p.id)
                .header("lambda-runtime-deadline-ms", p.deadline_ms.to_string())
                .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
                .header("lambda-runtime-trace-id", format!("Root=1-00000000-{}", p.id.replace('-', "")))
                .body(Full::new(Bytes::from(p.body)))
                .unwrap();
        }
        notified.await;
    }
}
