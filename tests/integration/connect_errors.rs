//! Connection failures: bad URL, wrong password, unreachable server, missing
//! database. None of them may print the password.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn bad_url_is_reported_without_the_password() {
    let dir = Dir::new();
    let r = run_in(
        dir.path(),
        &["--database-url", "postgres://app:Sup3rSecret@db:notaport/x", "status"],
        &[],
    );
    r.assert_error("invalid database URL postgres://app:***@db:notaport/x: port `notaport` is not a whole number");
    assert!(!r.output().contains("Sup3rSecret"));
    let r = run_in(dir.path(), &["--database-url", "mysql://app:Sup3rSecret@db/x", "status"], &[]);
    r.assert_error("invalid database URL mysql://app:***@db/x: expected a postgres:// or postgresql:// URL");
    assert!(!r.output().contains("Sup3rSecret"));
    let r = run_in(
        dir.path(),
        &["--database-url", "postgres://app:Sup3rSecret@db/x?sslmode=bogus", "status"],
        &[],
    );
    r.assert_error("invalid database URL postgres://app:***@db/x?sslmode=bogus: sslmode `bogus` is not one of disable, prefer, require, verify-ca, verify-full");
    assert!(!r.output().contains("Sup3rSecret"));
}

#[test]
fn wrong_password_never_reaches_output() {
    let db = Db::new();
    let dir = Dir::new();
    let bad = db.url.replace(&format!(":{}@", server_password()), ":Wr0ngPassw0rd@");
    assert_ne!(bad, db.url);
    for args in [vec!["up"], vec!["status"], vec!["--format", "json", "up"], vec!["-v", "verify"]] {
        let mut full = vec!["--database-url", bad.as_str()];
        full.extend(args.iter());
        let r = run_in(dir.path(), &full, &[]);
        assert_eq!(r.code, 2, "{r:#?}");
        assert!(
            r.stderr
                .contains("password authentication failed for user \"postgres\" (SQLSTATE 28P01)"),
            "{}",
            r.stderr
        );
        assert!(!r.output().contains("Wr0ngPassw0rd"), "password leaked: {}", r.output());
        assert!(!r.output().contains(&server_password()));
    }
    // Via PGPASSWORD too.
    let plain = db.url.replace(&format!(":{}@", server_password()), "@");
    let r = run_in(
        dir.path(),
        &["--database-url", &plain, "status"],
        &[("PGPASSWORD", "Wr0ngPassw0rd")],
    );
    assert_eq!(r.code, 2);
    assert!(!r.output().contains("Wr0ngPassw0rd"));
    assert!(db.versions().is_empty());
}

#[test]
fn unreachable_server_fails_in_bounded_time() {
    // A listener that accepts and never answers: the startup hangs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            if let Ok((s, _)) = listener.accept() {
                conns.push(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let dir = Dir::new();
    // Each attempt is bounded by connect_timeout, all of them by resume_timeout.
    dir.write("chatmigrate.toml", "[environments.t]\nresume_timeout = \"3s\"\n");
    let url = format!("postgres://u:Sup3rSecret@127.0.0.1:{port}/x?connect_timeout=2");
    let started = Instant::now();
    let r = run_in(dir.path(), &["--env", "t", "--database-url", &url, "status"], &[]);
    let took = started.elapsed();
    assert_eq!(r.code, 2, "{r:#?}");
    let e = r.error_line();
    assert!(e.starts_with(&format!("error: u@127.0.0.1:{port}/x did not become available within 3 s (2 attempt(s); last: cannot connect to u@127.0.0.1:{port}/x: no answer within 2.0 s)")), "{e}");
    // The held attempt is reported while it waits, not only after it.
    assert!(
        r.stderr
            .starts_with("waiting for the database to accept connections: 1 s (attempt 1: no answer yet)\n"),
        "{}",
        r.stderr
    );
    assert!(took < Duration::from_secs(7), "took {took:?}");
    assert!(!r.output().contains("Sup3rSecret"));
    // Nothing listening at all, never reached: retried for refused_timeout only.
    drop(held);
    dir.write(
        "chatmigrate.toml",
        "[environments.t]\nresume_timeout = \"3s\"\nrefused_timeout = \"1s\"\n",
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let r = run_in(
        dir.path(),
        &[
            "--env",
            "t",
            "--database-url",
            &format!("postgres://u@127.0.0.1:{free}/x"),
            "status",
        ],
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(
        r.error_line(),
        format!("error: cannot connect to u@127.0.0.1:{free}/x: error connecting to server: Connection refused (os error 111)")
    );
    assert_eq!(
        r.hint(),
        format!("hint: nothing accepts connections on 127.0.0.1:{free} (refused for 1 s): check host and port, and that the server is running; raise refused_timeout to wait longer for a server that is starting")
    );
}

#[test]
fn missing_database_points_to_create_database() {
    let name = Db::fresh_name();
    let db = Db::adopt(&name);
    let r = cm_embedded(&db, &["up"]);
    r.assert_error(&format!("database `{name}` does not exist on 127.0.0.1:{}", port()));
    assert_eq!(r.hint(), "hint: create it with `chatmigrate up --create-database`");
    // status still works and shows everything pending.
    let s = cm_embedded(&db, &["status", "--exit-code"]);
    assert_eq!(s.code, 1);
    assert!(s.stdout.starts_with("database does not exist yet"), "{}", s.stdout);
    std::mem::forget(db);
}

fn self_signed(dir: &Dir, cn: &str) -> String {
    let out = dir.path().join(format!("{cn}.pem"));
    let key = dir.path().join(format!("{cn}.key"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={cn}"),
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&out)
        .output()
        .expect("openssl");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn sslrootcert_bundle_loads_every_certificate_and_rejects_garbage() {
    let dir = Dir::new();
    let db = Db::new();
    // Garbage: refused before the network is tried.
    let bad = dir.write("bad.pem", "not a certificate\n");
    let url = format!("{}?sslmode=verify-full&sslrootcert={}", db.url, bad.display());
    run_in(dir.path(), &["--database-url", &url, "status"], &[]).assert_error(&format!(
        "invalid setting sslrootcert: {}: no PEM certificate in the file",
        bad.display()
    ));
    // A second block that is broken is named by its position.
    let one = self_signed(&dir, "ca-one");
    let broken = dir.write(
        "broken.pem",
        format!("{one}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    );
    let url = format!("{}?sslmode=verify-full&sslrootcert={}", db.url, broken.display());
    let r = run_in(dir.path(), &["--database-url", &url, "status"], &[]);
    assert!(
        r.stderr.starts_with(&format!(
            "error: invalid setting sslrootcert: {}: certificate 2: ",
            broken.display()
        )),
        "{}",
        r.stderr
    );
    // A bundle of two good certificates loads; the test server has no TLS, so
    // verify-full then fails at the handshake, not at the bundle.
    let bundle = dir.write("bundle.pem", format!("{one}{}", self_signed(&dir, "ca-two")));
    let url = format!("{}?sslmode=verify-full&sslrootcert={}", db.url, bundle.display());
    let r = run_in(dir.path(), &["--database-url", &url, "status"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("error: cannot connect to postgres@127.0.0.1:"), "{}", r.stderr);
    assert!(r.stderr.contains("TLS"), "{}", r.stderr);
    assert!(!r.output().contains(&server_password()));
}
