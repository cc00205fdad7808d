//! AWS plumbing shared by the transports: the SDK configuration (the
//! standard credential chain, region, profile, endpoint override) with the
//! SDK's own retries off and a per-attempt timeout; a Secrets Manager
//! secret's database credentials; IAM database auth tokens.
//!
//! The SDK's retries are disabled because it would silently re-send
//! non-idempotent statements on 500/502/503/504; `retry.rs` decides instead.
//! The IAM token is presigned with `aws-sigv4` (the ~40 lines of
//! `aws_sdk_rds::auth_token`, without compiling the whole RDS control-plane
//! client for one function).

use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::error::{Error, Result};
use crate::settings::{Config, Secret};

/// Loads the AWS configuration from the standard chain plus the
/// environment's `region`, `profile` and `endpoint_url`.
pub async fn sdk_config(cfg: &Config) -> Result<SdkConfig> {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(cfg.aws.request_timeout)
                .build(),
        );
    if let Some(r) = &cfg.aws.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(p) = &cfg.aws.profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = &cfg.aws.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Error::InvalidSetting {
            key: "region".into(),
            message: "no AWS region: set `region` in the environment, AWS_REGION, or the profile's region".into(),
        });
    }
    Ok(sdk)
}

/// Database credentials from a Secrets Manager secret (the RDS layout).
#[derive(Debug, Clone)]
pub struct DbSecret {
    pub username: String,
    pub password: Secret,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
}

#[derive(serde::Deserialize)]
struct SecretJson {
    username: String,
    password: String,
    host: Option<String>,
    port: Option<serde_json::Value>,
    dbname: Option<String>,
}

/// Parses the RDS secret JSON: `port` may be a string or a number; host,
/// port and dbname may be missing (RDS-managed `rds!cluster-…` secrets).
pub fn parse_secret(arn: &str, text: &str) -> Result<DbSecret> {
    let bad = |why: String| Error::Aws {
        context: format!("reading secret {arn}"),
        code: "InvalidSecretException".into(),
        message: why,
    };
    let j: SecretJson = serde_json::from_str(text).map_err(|e| {
        // serde's message names the missing key, never a value.
        bad(format!(
            "not an RDS database secret ({})",
            e.to_string().split(" at line").next().unwrap_or("")
        ))
    })?;
    let port = match j.port {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    Ok(DbSecret {
        username: j.username,
        password: Secret::new(j.password),
        host: j.host.filter(|h| !h.is_empty()),
        port,
        dbname: j.dbname.filter(|d| !d.is_empty()),
    })
}

/// Fetches and parses a database secret.
pub async fn fetch_secret(sdk: &SdkConfig, arn: &str) -> Result<DbSecret> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
        let code = e.code().map(str::to_string).unwrap_or_else(|| non_service_code(&e));
        let message = e.message().map(str::to_string).unwrap_or_else(|| error_line(&e));
        Error::Aws {
            context: format!("reading secret {arn}"),
            code,
            message,
        }
    })?;
    let text = out.secret_string().ok_or_else(|| Error::Aws {
        context: format!("reading secret {arn}"),
        code: "InvalidSecretException".into(),
        message: "the secret has no SecretString".into(),
    })?;
    parse_secret(arn, text)
}

/// An SDK failure as one readable line: the messages of its chain of
/// sources without the SDK's layer names (`tcp connect error: Connection
/// refused (os error 111)` for `dispatch failure: io error: client error
/// (Connect): tcp connect error: ...`), never the debug form
/// (`DispatchFailure(DispatchFailure { source: ConnectorError { .. } })`)
/// that `DisplayErrorContext` appends.
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    /// What the SDK's and hyper's wrappers say about themselves.
    const LAYERS: [&str; 10] = [
        "dispatch failure",
        "response error",
        "timeout error",
        "service error",
        "failed to construct request",
        "io error",
        "other",
        "timeout",
        "user error",
        "unhandled error",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        let layer = LAYERS.contains(&text.as_str()) || text.starts_with("client error (");
        // Some errors repeat their source's message in their own.
        if !text.is_empty() && !layer && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// A short code for an SDK failure that is not a service error (credentials,
/// timeouts, I/O), used for hints and classification.
pub fn non_service_code<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match e {
        SdkError::TimeoutError(_) => "timeout".into(),
        // The HTTP connect timed out: the request was never sent.
        SdkError::DispatchFailure(d) if d.is_timeout() => "connect timeout".into(),
        SdkError::DispatchFailure(d) if d.is_io() => "io".into(),
        SdkError::ConstructionFailure(_) => "credentials".into(),
        SdkError::DispatchFailure(_) => {
            let text = aws_smithy_types::error::display::DisplayErrorContext(e).to_string();
            if text.contains("credentials") || text.contains("identity") {
                "credentials".into()
            } else {
                "dispatch".into()
            }
        }
        SdkError::ResponseError(_) => "response".into(),
        _ => "unknown".into(),
    }
}

/// Mints an IAM database auth token for `user` at `host:port` (valid 15
/// minutes; mint one per new connection).
pub async fn iam_token(sdk: &SdkConfig, host: &str, port: u16, user: &str) -> Result<Secret> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
    use aws_sigv4::sign::v4;
    let fail = |message: String| Error::Aws {
        context: "creating an IAM auth token".into(),
        code: "credentials".into(),
        message,
    };
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| fail("no AWS credentials provider".into()))?;
    let creds = provider.provide_credentials().await.map_err(|e| fail(error_line(&e)))?;
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let identity = creds.into();
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(Duration::from_secs(900));
    settings.signature_location = SignatureLocation::QueryParams;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("rds-db")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let url = format!("https://{host}:{port}/?Action=connect&DBUser={user}");
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[])).map_err(|e| fail(e.to_string()))?;
    let (instructions, _) = sign(signable, &params.into()).map_err(|e| fail(e.to_string()))?.into_parts();
    let mut req = http::Request::builder().uri(&url).body(()).map_err(|e| fail(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut req);
    let token = req.uri().to_string();
    Ok(Secret::new(token.trim_start_matches("https://").to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_port_as_string_or_number_and_missing_host() {
        let s = parse_secret(
            "a",
            r#"{"username":"u","password":"p","host":"h","port":"5432","dbname":"d","engine":"postgres"}"#,
        )
        .unwrap();
        assert_eq!((s.host.as_deref(), s.port, s.dbname.as_deref()), (Some("h"), Some(5432), Some("d")));
        let s = parse_secret("a", r#"{"username":"u","password":"p","port":5433}"#).unwrap();
        assert_eq!((s.host, s.port), (None, Some(5433)));
        let e = parse_secret("a", r#"{"password":"p"}"#).unwrap_err().to_string();
        assert_eq!(
            e,
            "reading secret a: AWS answered InvalidSecretException: not an RDS database secret (missing field `username`)"
        );
    }

    /// An error with a message and an optional source.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn sdk_errors_become_one_line_without_layer_names_or_debug_forms() {
        let chain = |parts: &[&'static str]| parts.iter().rev().fold(None, |source, p| Some(Box::new(Layer(p, source)))).unwrap();
        let e = chain(&[
            "dispatch failure",
            "io error",
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(error_line(&*e), "tcp connect error: Connection refused (os error 111)");
        // A message that repeats its source's is said once; newlines are spaces.
        let e = chain(&["reading: broken\npipe", "broken pipe"]);
        assert_eq!(error_line(&*e), "reading: broken pipe");
        // Nothing but layer names: the outermost is kept.
        assert_eq!(error_line(&*chain(&["dispatch failure", "other"])), "dispatch failure");
    }

    #[test]
    fn iam_token_is_a_presigned_connect_url_without_scheme() {
        let sdk = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", Some("TOKEN".into()), None, "test"),
            ))
            .behavior_version(BehaviorVersion::latest())
            .build();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let t = rt
            .block_on(iam_token(&sdk, "c.cluster-x.eu-west-1.rds.amazonaws.com", 5432, "app_user"))
            .unwrap();
        let t = t.expose();
        assert!(
            t.starts_with("c.cluster-x.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app_user&"),
            "{t}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F",
            "%2Feu-west-1%2Frds-db%2Faws4_request",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
            "X-Amz-Security-Token=TOKEN",
        ] {
            assert!(t.contains(part), "{part} missing from {t}");
        }
    }
}
