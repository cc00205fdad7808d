//! The HTTP side: the hyper accept loop, routing of `POST /<Operation>` (and
//! `POST /` + `X-Amz-Target` to Secrets Manager), the call log, applying an
//! injected fault (before or after running the call), and turning replies
//! into HTTP responses. Each request's work runs in its own task, so a client
//! that hangs up does not stop a statement half way.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request as HttpRequest, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::faults::{fault_error, Fault, FaultKind};
use super::sessions::{self, rollback_and_close, EXPIRED};
use super::wire::{render, ApiError, HttpReply, Reply, Request, Service};
use super::{ops, secrets, Call, Shared, RESOURCE_ARN};

/// Serves until `shutdown` fires, then rolls back and closes every open transaction.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let reaper = tokio::spawn(sessions::reap(shared.txs.clone(), shared.opts.transaction_idle_timeout));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        }
    }
    reaper.abort();
    let closing: Vec<_> = shared
        .txs
        .take_all()
        .into_iter()
        .map(|s| tokio::spawn(rollback_and_close(s)))
        .collect();
    for c in closing {
        let _ = tokio::time::timeout(Duration::from_secs(3), c).await;
    }
}

/// The error hyper gets to close a connection without answering.
#[derive(Debug)]
struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by fault injection")
    }
}

impl std::error::Error for Hangup {}

async fn handle(shared: Arc<Shared>, req: HttpRequest<Incoming>) -> Result<Response<Full<Bytes>>, Hangup> {
    let path = req.uri().path().to_string();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let target = header("x-amz-target");
    let access_key_id = header("authorization").and_then(|a| parse_access_key_id(&a));
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Hangup),
    };
    let work = tokio::spawn(process(shared, path, target, access_key_id, body));
    let reply = work
        .await
        .unwrap_or_else(|e| render(ApiError::internal(format!("request task failed: {e}")).into(), Service::RdsData));
    if reply.close {
        return Err(Hangup);
    }
    let mut resp = Response::builder().status(reply.status);
    for (k, v) in reply.headers {
        resp = resp.header(k, v);
    }
    Ok(resp.body(Full::new(Bytes::from(reply.body))).unwrap())
}

/// `Credential=AKID/date/region/service/aws4_request` in a SigV4 Authorization header.
fn parse_access_key_id(auth: &str) -> Option<String> {
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.to_string())
}

fn op_name(path: &str) -> Option<&'static str> {
    Some(match path {
        "/Execute" => "Execute",
        "/BatchExecute" => "BatchExecute",
        "/BeginTransaction" => "BeginTransaction",
        "/CommitTransaction" => "CommitTransaction",
        "/RollbackTransaction" => "RollbackTransaction",
        "/ExecuteSql" => "ExecuteSql",
        _ => return None,
    })
}

async fn process(shared: Arc<Shared>, path: String, target: Option<String>, access_key_id: Option<String>, body: Bytes) -> HttpReply {
    if path == "/" && target.is_some() {
        return secrets::handle(&shared, target.as_deref().unwrap_or(""), access_key_id, &body).await;
    }
    let Some(op) = op_name(&path) else {
        let idx = shared.log(Call::new(path.trim_start_matches('/'), access_key_id));
        let reply: Reply = ApiError::new(404, "UnknownOperationException", format!("No operation at {path}")).into();
        shared.set_outcome(idx, reply.outcome());
        return render(reply, Service::RdsData);
    };
    let parsed: Result<Request, _> = if body.is_empty() {
        Ok(Request::default())
    } else {
        serde_json::from_slice(&body)
    };
    let mut call = Call::new(op, access_key_id);
    if let Ok(r) = &parsed {
        call.sql = r.sql.clone();
        call.transaction_id = r.transaction_id.clone();
        call.database = r.database.clone();
        call.continue_after_timeout = r.continue_after_timeout.unwrap_or(false);
        call.had_schema = r.schema.is_some();
    }
    let idx = shared.log(call);
    let req = match parsed {
        Ok(r) => r,
        Err(e) => {
            let reply: Reply = ApiError::new(400, "SerializationException", format!("Invalid request body: {e}")).into();
            shared.set_outcome(idx, reply.outcome());
            return render(reply, Service::RdsData);
        }
    };
    let fault = shared.faults.lock().unwrap().take(op, req.sql.as_deref());
    let (reply, delay) = match fault {
        None => (ops::dispatch(&shared, op, &req).await, None),
        Some(f) => {
            if f.after_run {
                let _ = ops::dispatch(&shared, op, &req).await;
            }
            let arn = req.resource_arn.as_deref().unwrap_or(RESOURCE_ARN);
            if f.kind == FaultKind::ExpireTransaction {
                if let Some(s) = req.transaction_id.as_deref().and_then(|id| shared.txs.finish(id, Some(EXPIRED))) {
                    rollback_and_close(s).await;
                }
            }
            fault_reply(&shared, &f, Service::RdsData, arn)
        }
    };
    finish(&shared, idx, reply, delay, Service::RdsData).await
}

/// The reply for a fault, and how long to stay silent before sending it.
pub fn fault_reply(shared: &Shared, f: &Fault, service: Service, arn: &str) -> (Reply, Option<Duration>) {
    let fake_pid = shared.faults.lock().unwrap().fake_pid();
    let delay = match f.kind {
        FaultKind::Hang(d) => Some(d),
        _ => None,
    };
    let reply = match f.kind {
        FaultKind::Html502 => Reply::Html502,
        FaultKind::CloseConnection => Reply::Close,
        kind => Reply::Err(fault_error(kind, service, arn, fake_pid).expect("an AWS error"), f.carrier),
    };
    (reply, delay)
}

/// Spells a PostgreSQL error the way the server's implementation does,
/// records the outcome, waits out a hang, renders.
pub async fn finish(shared: &Shared, idx: usize, reply: Reply, delay: Option<Duration>, service: Service) -> HttpReply {
    let reply = match reply {
        Reply::Err(e, carrier) => Reply::Err(e.respell(&shared.opts), carrier),
        other => other,
    };
    shared.set_outcome(idx, reply.outcome());
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    render(reply, service)
}
