//! Secrets Manager's `GetSecretValue` (awsJson1.1: `POST /` with
//! `X-Amz-Target: secretsmanager.GetSecretValue`) on the same port, so that a
//! client resolving `--secret-arn` can be pointed at this server too.

use serde_json::{json, Value};

use super::server::{fault_reply, finish};
use super::wire::{render, ApiError, HttpReply, Reply, Service};
use super::{Call, Shared, SECRET_ARN};

/// The secret's friendly name (the ARN without the random `-AbCdEf` suffix).
pub const SECRET_NAME: &str = "chat";

/// A version id for the one version the secret has.
const VERSION_ID: &str = "3f1d2c4b-5a69-4e7f-8a1b-2c3d4e5f6a7b";

/// The seconds since the epoch the secret was created at (fixed).
const CREATED: f64 = 1_700_000_000.123;

fn is_our_secret(id: &str) -> bool {
    let partial = SECRET_ARN.rsplit_once('-').map(|(p, _)| p).unwrap_or(SECRET_ARN);
    id == SECRET_ARN || id == SECRET_NAME || id == partial
}

pub async fn handle(shared: &Shared, target: &str, access_key_id: Option<String>, body: &[u8]) -> HttpReply {
    let op = target.strip_prefix("secretsmanager.").unwrap_or(target);
    let idx = shared.log(Call::new(op, access_key_id));
    if op != "GetSecretValue" {
        let reply: Reply = ApiError::new(400, "UnknownOperationException", format!("Unknown operation {target}")).into();
        shared.set_outcome(idx, reply.outcome());
        return render(reply, Service::SecretsManager);
    }
    let fault = shared.faults.lock().unwrap().take(op, None);
    if let Some(f) = fault {
        let (reply, delay) = fault_reply(shared, &f, Service::SecretsManager, SECRET_ARN);
        return finish(shared, idx, reply, delay, Service::SecretsManager).await;
    }
    let id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("SecretId").and_then(Value::as_str).map(str::to_string));
    let reply = match id {
        None => ApiError::new(400, "InvalidParameterException", "You must provide a SecretId.").into(),
        Some(id) if !is_our_secret(&id) => {
            ApiError::new(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.").into()
        }
        Some(_) => {
            let reply = Reply::Ok(json!({
                "ARN": SECRET_ARN,
                "Name": SECRET_NAME,
                "SecretString": shared.secret.lock().unwrap().clone(),
                "VersionId": VERSION_ID,
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": CREATED,
            }));
            let mut rotation = shared.rotation.lock().unwrap();
            if let Some((after, next)) = rotation.as_mut() {
                *after = after.saturating_sub(1);
                if *after == 0 {
                    *shared.secret.lock().unwrap() = std::mem::take(next);
                    *rotation = None;
                }
            }
            reply
        }
    };
    finish(shared, idx, reply, None, Service::SecretsManager).await
}
