//! The direct path's AWS credentials and TLS (AWS reference §7, 20, 21, 25):
//! verify-full against a test CA (several certificates in the bundle, the
//! match last), a CA that signed nothing, a hostname mismatch, plaintext
//! refused as `rds.force_ssl` does, an IAM token per connection checked at
//! the door (a rejected token retried once with a fresh one), and a rotated
//! Secrets Manager password re-read once.

use crate::support::dataapi::{DataApiServer, Options, SECRET_ARN};
use crate::support::tls_front::{Auth, Certs, TlsFront};
use crate::support::*;

/// A database owned by a `cm_trust_*` role: the server lets that role in
/// without a password (scripts/pg.sh), so the TLS front decides who gets in.
struct TrustDb {
    db: Db,
    role: String,
}

impl TrustDb {
    fn new() -> TrustDb {
        let db = Db::new();
        let role = format!("cm_trust_{}", db.name);
        query_url(&server_url(), &format!("CREATE ROLE {role} LOGIN"));
        query_url(&server_url(), &format!("ALTER DATABASE {} OWNER TO {role}", db.name));
        TrustDb { db, role }
    }
}

impl Drop for TrustDb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            query_url(&server_url(), &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db.name));
            query_url(&server_url(), &format!("DROP ROLE IF EXISTS {}", self.role));
        }
    }
}

fn one(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\n");
}

/// `up` of one migration with environment `t` = `settings` (plus the
/// region and a 10 s resume deadline), AWS credentials in the environment.
fn up_with(settings: &str) -> Run {
    let (dir, conf_dir) = (Dir::new(), Dir::new());
    one(&dir);
    let conf = conf_dir.write(
        "chatmigrate.toml",
        format!("[environments.t]\nregion = \"us-east-1\"\nresume_timeout = \"10s\"\n{settings}\n"),
    );
    let m = dir.path().to_str().unwrap();
    run_in(
        dir.path(),
        &["--config", conf.to_str().unwrap(), "--env", "t", "--migrations", m, "up"],
        &AWS_ENV,
    )
}

/// `up` against `t` through `front` with `host` and extra config lines.
fn up_tls(t: &TrustDb, front: &TlsFront, host: &str, extra: &[&str]) -> Run {
    up_with(&format!(
        "host = \"{host}\"\nport = {}\nuser = \"{}\"\ndbname = \"{}\"\n{}",
        front.port,
        t.role,
        t.db.name,
        extra.join("\n")
    ))
}

fn root(name: &str) -> String {
    format!("sslrootcert = \"{}\"", Certs::get().path(name))
}

// Scenario 25: TLS.

#[test]
fn verify_full_against_the_ca_applies_over_tls() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::PassThrough));
    let r = up_tls(&t, &front, "localhost", &["sslmode = \"verify-full\"", &root("ca.crt")]);
    r.assert_ok();
    assert_eq!(t.db.versions(), vec![1]);
    assert!(front.tls_sessions() >= 1);
    assert_eq!(front.plaintext_refused(), 0);
}

#[test]
fn every_certificate_of_the_bundle_is_trusted_not_only_the_first() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::PassThrough));
    let r = up_tls(
        &t,
        &front,
        "localhost",
        &["sslmode = \"verify-full\"", &root("bundle-last-matches.pem")],
    );
    r.assert_ok();
    assert_eq!(t.db.versions(), vec![1]);
}

#[test]
fn a_server_certificate_the_bundle_did_not_sign_is_refused_without_retries() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::PassThrough));
    let r = up_tls(&t, &front, "localhost", &["sslmode = \"verify-full\"", &root("other-ca.crt")]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(r.error_line().contains("certificate verify failed"), "{}", r.output());
    assert!(
        r.hint().starts_with(&format!(
            "hint: the server's certificate is not signed by a CA in sslrootcert ({})",
            Certs::get().path("other-ca.crt")
        )),
        "{}",
        r.hint()
    );
    assert_eq!(front.connections(), 1, "a certificate error is not retried");
    assert!(t.db.history().is_empty());
    assert!(!t.db.table_exists("a"));
}

#[test]
fn hostname_mismatch_fails_verify_full_and_passes_verify_ca() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::PassThrough));
    // The certificate names `localhost` only.
    let r = up_tls(&t, &front, "127.0.0.1", &["sslmode = \"verify-full\"", &root("ca.crt")]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(r.error_line().contains("certificate verify failed"), "{}", r.output());
    assert_eq!(
        r.hint(),
        "hint: the server's certificate does not name `127.0.0.1`: connect with the name it was issued for (for RDS, the cluster endpoint), or use sslmode = \"verify-ca\""
    );
    assert!(t.db.history().is_empty());
    let r = up_tls(&t, &front, "127.0.0.1", &["sslmode = \"verify-ca\"", &root("ca.crt")]);
    r.assert_ok();
    assert_eq!(t.db.versions(), vec![1]);
}

#[test]
fn plaintext_to_a_tls_only_server_gets_the_pg_hba_refusal_and_one_retry() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::PassThrough));
    let r = up_tls(&t, &front, "localhost", &["sslmode = \"disable\""]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.error_line().contains(&format!(
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"{}\", database \"{}\", no encryption",
            t.role, t.db.name
        )),
        "{}",
        r.output()
    );
    assert_eq!(
        r.hint(),
        "hint: the server only accepts TLS: set sslmode = \"verify-full\" and sslrootcert (for RDS, the global bundle)"
    );
    assert_eq!(front.plaintext_refused(), 2, "28000 is retried once, then reported");
    assert!(t.db.history().is_empty());
}

// Scenario 20 at the door: IAM tokens.

fn iam() -> [&'static str; 2] {
    ["iam_auth = true", "sslmode = \"verify-full\""]
}

#[test]
fn iam_auth_sends_a_fresh_token_per_connection_over_tls() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::Iam { reject_first: 0 }));
    let ca = root("ca.crt");
    let r = up_tls(&t, &front, "localhost", &[iam()[0], iam()[1], &ca]);
    r.assert_ok();
    assert_eq!(t.db.versions(), vec![1]);
    let tokens = front.tokens();
    assert_eq!(tokens.len(), front.connections(), "one token per connection");
    for tok in &tokens {
        assert!(tok.starts_with(&format!("localhost:{}/?", front.port)), "{tok}");
        assert!(tok.contains(&format!("DBUser={}", t.role)), "{tok}");
        assert!(tok.contains("X-Amz-Credential=AKIDTEST%2F"), "{tok}");
        assert!(tok.contains("%2Fus-east-1%2Frds-db%2Faws4_request"), "{tok}");
    }
}

#[test]
fn a_rejected_iam_token_is_replaced_once() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::Iam { reject_first: 1 }));
    let ca = root("ca.crt");
    let r = up_tls(&t, &front, "localhost", &[iam()[0], iam()[1], &ca]);
    r.assert_ok();
    assert_eq!(t.db.versions(), vec![1]);
    assert!(front.tokens().len() >= 2);
}

#[test]
fn iam_tokens_rejected_every_time_stop_after_one_fresh_token() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::Iam { reject_first: 100 }));
    let ca = root("ca.crt");
    let r = up_tls(&t, &front, "localhost", &[iam()[0], iam()[1], &ca]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.error_line()
            .contains(&format!("PAM authentication failed for user \"{}\"", t.role)),
        "{}",
        r.output()
    );
    assert!(r.hint().starts_with("hint: the IAM token was refused also when minted again: check that the caller's policy allows rds-db:connect for db user `cm_trust_"), "{}", r.hint());
    assert_eq!(front.tokens().len(), 2, "the first token and one fresh one");
    assert!(
        !r.output().contains("X-Amz-Signature"),
        "a token reached the output: {}",
        r.output()
    );
    assert!(t.db.history().is_empty());
}

#[test]
fn iam_auth_without_tls_is_refused_before_connecting() {
    let (t, front) = (TrustDb::new(), TlsFront::start(Auth::Iam { reject_first: 0 }));
    let r = up_tls(&t, &front, "localhost", &["iam_auth = true", "sslmode = \"prefer\""]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_error("invalid setting sslmode: iam_auth sends an IAM token as the password, which needs TLS: `prefer` may send it in clear");
    assert_eq!(front.connections(), 0);
}

// Scenario 21: a rotated secret.

/// A role with a password, a database it owns, and a Data API test server
/// whose Secrets Manager answers with `old` for the role's password.
struct Rotating {
    server: DataApiServer,
    db: Db,
    role: String,
}

impl Rotating {
    fn new(old: &str) -> Rotating {
        let db = Db::new();
        let role = format!("cm_rot_{}", db.name);
        query_url(&server_url(), &format!("CREATE ROLE {role} LOGIN PASSWORD 'rotated-pw'"));
        query_url(&server_url(), &format!("ALTER DATABASE {} OWNER TO {role}", db.name));
        let server = DataApiServer::start(&server_url(), Options::default());
        server.set_secret(&Rotating::secret(&role, old));
        Rotating { server, db, role }
    }

    fn secret(role: &str, password: &str) -> String {
        format!(
            r#"{{"username":"{role}","password":"{password}","engine":"postgres","host":"127.0.0.1","port":"{}"}}"#,
            port()
        )
    }

    fn up(&self) -> Run {
        up_with(&format!(
            "secret_arn = \"{SECRET_ARN}\"\nendpoint_url = \"{}\"\ndbname = \"{}\"\nsslmode = \"disable\"",
            self.server.endpoint(),
            self.db.name
        ))
    }
}

impl Drop for Rotating {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            query_url(&server_url(), &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db.name));
            query_url(&server_url(), &format!("DROP ROLE IF EXISTS {}", self.role));
        }
    }
}

#[test]
fn a_password_rotated_since_the_secret_was_read_is_read_again_once() {
    let rot = Rotating::new("pre-rotation-pw");
    rot.server.rotate_secret_after(1, &Rotating::secret(&rot.role, "rotated-pw"));
    let r = rot.up();
    r.assert_ok();
    assert_eq!(rot.db.versions(), vec![1]);
    assert_eq!(rot.server.calls_of("GetSecretValue").len(), 2);
}

#[test]
fn a_secret_that_stays_wrong_fails_after_one_re_read() {
    let rot = Rotating::new("never-right-pw");
    let r = rot.up();
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.error_line()
            .contains(&format!("password authentication failed for user \"{}\"", rot.role)),
        "{}",
        r.output()
    );
    assert_eq!(
        r.hint(),
        format!("hint: the secret's password was refused also after reading the secret again: check that the secret belongs to db user `{}` and that its rotation finished", rot.role)
    );
    assert_eq!(rot.server.calls_of("GetSecretValue").len(), 2);
    assert!(!r.output().contains("never-right-pw"), "the password reached the output");
    assert!(rot.db.history().is_empty());
}
