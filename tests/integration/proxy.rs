//! A TCP fault proxy between chatmigrate and the server, for the direct
//! path's failure scenarios (AWS reference §7, 17–24): each accepted
//! connection takes the next scripted [`Fault`] (then everything passes
//! through): a held connect, an EOF or reset during start-up, a FATAL
//! answered in the server's place, or a cut when the client sends a marker
//! (before forwarding it, or right after, so the server runs it and the
//! answer is lost).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Accept, stay silent this long, then pass through (a paused instance).
    Hold(Duration),
    /// Close right after reading the start-up message.
    Eof,
    /// Reset (RST) right after reading the start-up message.
    Reset,
    /// Answer the start-up message with a FATAL ErrorResponse.
    Fatal(&'static str, &'static str),
    /// Pass through until the client sends `marker`, then cut the
    /// connection before forwarding it...
    CutBefore(&'static [u8]),
    /// ...or right after forwarding it.
    CutAfter(&'static [u8]),
}

pub struct Proxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(script: &[Fault]) -> Proxy {
        let upstream: u16 = crate::schema::port().parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (stop2, accepted2) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        accepted2.fetch_add(1, Ordering::SeqCst);
                        client.set_nonblocking(false).unwrap();
                        let fault = script.lock().unwrap().pop_front();
                        std::thread::spawn(move || serve(client, upstream, fault));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, stop, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// `db`'s URL, through this proxy.
    pub fn url(&self, db: &Db) -> String {
        let port = crate::schema::port();
        db.url.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{}", self.port))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads the client's start-up packet, answering an SSLRequest with 'N'
/// (no TLS) first.
fn read_startup(client: &mut TcpStream) -> Option<Vec<u8>> {
    let p = read_packet(client)?;
    if p.len() == 8 && p[4..8] == 80877103u32.to_be_bytes() {
        client.write_all(b"N").ok()?;
        return read_packet(client);
    }
    Some(p)
}

/// Reads one length-prefixed packet.
fn read_packet(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    client.read_exact(&mut len).ok()?;
    let n = u32::from_be_bytes(len) as usize;
    let mut rest = vec![0u8; n.saturating_sub(4)];
    client.read_exact(&mut rest).ok()?;
    let mut all = len.to_vec();
    all.extend(rest);
    Some(all)
}

fn serve(mut client: TcpStream, upstream: u16, fault: Option<Fault>) {
    match fault {
        Some(Fault::Hold(d)) => std::thread::sleep(d),
        Some(Fault::Eof) => {
            let _ = read_startup(&mut client);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Some(Fault::Reset) => {
            // Closing with the start-up message unread makes the kernel
            // answer with a RST instead of a FIN.
            std::thread::sleep(Duration::from_millis(50));
            drop(client);
            return;
        }
        Some(Fault::Fatal(code, message)) => {
            let _ = read_startup(&mut client);
            let _ = client.write_all(&crate::tls_front::fatal_message(code, message));
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let cut = match fault {
        Some(Fault::CutBefore(m)) => Some((m, false)),
        Some(Fault::CutAfter(m)) => Some((m, true)),
        _ => None,
    };
    std::thread::spawn(move || pipe(s2, c2, None));
    pipe(client, server, cut);
}

/// Copies bytes; with a marker, cuts before (`false`) or after (`true`) it.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<(&[u8], bool)>) {
    let mut buf = [0u8; 65536];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if let Some((marker, after)) = cut {
            if let Some(pos) = chunk.windows(marker.len()).position(|w| w == marker) {
                if after {
                    // The server gets the whole batch; the client loses the
                    // connection before any answer.
                    let _ = to.write_all(chunk);
                    let _ = from.shutdown(Shutdown::Both);
                    std::thread::sleep(Duration::from_millis(300));
                } else {
                    let _ = to.write_all(&chunk[..pos]);
                }
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn files(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__b.sql",
        "CREATE TABLE b (id int);\nSELECT 'cut-here-marker';\nCREATE TABLE b2 (id int);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
}

/// `up` through a proxy with `script`, on a fresh database.
fn up_via(script: &[Fault], extra: &[&str]) -> (Db, Dir, Run, Proxy) {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start(script);
    let url = proxy.url(&db);
    let mut args = vec!["--database-url", &url, "--migrations", dir.path().to_str().unwrap()];
    let conf_dir = Dir::new();
    let conf;
    if !extra.is_empty() {
        conf = conf_dir.write("chatmigrate.toml", format!("[environments.t]\n{}\n", extra.join("\n")));
        args.extend(["--config", conf.to_str().unwrap(), "--env", "t"]);
    }
    args.push("up");
    let r = run_in(dir.path(), &args, &[]);
    (db, dir, r, proxy)
}

// Scenario 23: the connection drops mid-migration.

#[test]
fn cut_before_the_server_sees_the_migration_reconnects_and_reruns_it() {
    let (db, _dir, r, _p) = up_via(&[Fault::CutBefore(b"cut-here-marker")], &[]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("connection lost (V2 b: connection closed); reconnecting (attempt 1) to re-read the history"),
        "{}",
        r.stdout
    );
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert!(db.table_exists("b2"));
}

#[test]
fn cut_after_commit_is_resolved_from_history_not_resent() {
    let (db, _dir, r, _p) = up_via(&[Fault::CutAfter(b"cut-here-marker")], &[]);
    r.assert_ok();
    assert!(r.stdout.contains("reconnecting (attempt 1)"), "{}", r.stdout);
    // V2 committed before the cut: the history says so and it is not re-run.
    assert!(!r.stdout.contains("applied V2"), "V2 applied twice: {}", r.stdout);
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn a_connection_that_keeps_dropping_stops_after_three_reconnects() {
    let cut = Fault::CutBefore(b"cut-here-marker");
    let (db, _dir, r, _p) = up_via(&[cut, cut, cut, cut], &[]);
    r.assert_error("connection lost during V2 b: connection closed");
    assert!(r.stdout.contains("reconnecting (attempt 3)"), "{}", r.stdout);
    assert_eq!(db.versions(), vec![1]);
    assert!(!db.table_exists("b"), "V2 half-applied");
}

// Scenarios 17, 18, 22: a resuming instance's connects.

#[test]
fn held_connect_succeeds_within_the_connect_timeout() {
    let (db, _dir, r, _p) = up_via(&[Fault::Hold(Duration::from_millis(1500))], &["connect_timeout = \"5s\""]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn held_connect_past_the_deadline_fails_cleanly() {
    let hold = Fault::Hold(Duration::from_secs(3));
    let (db, _dir, r, p) = up_via(&[hold; 10], &["connect_timeout = \"500ms\"", "resume_timeout = \"2s\""]);
    assert_eq!(r.code, 2, "{r:#?}");
    let first = r.error_line();
    assert!(first.contains("did not become available within 2 s"), "{first}");
    assert!(first.contains("no answer within 500 ms"), "{first}");
    assert!(r.hint().starts_with("hint: check that the cluster is available"), "{}", r.hint());
    assert!(p.accepted() >= 2, "retried: {}", p.accepted());
    assert!(r.stderr.contains("waiting for the database to accept connections"), "{}", r.stderr);
    assert_eq!(db.versions(), Vec::<i64>::new());
}

#[test]
fn eof_reset_and_starting_up_are_retried() {
    let script = [
        Fault::Eof,
        Fault::Reset,
        Fault::Fatal("57P03", "the database system is starting up"),
        Fault::Eof,
    ];
    let (db, _dir, r, p) = up_via(&script, &[]);
    r.assert_ok();
    assert_eq!(p.accepted(), 5, "four failed attempts, then one that worked");
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

// Scenarios 19, 20: 28000 during resume is retried once; a lasting one fails.

#[test]
fn transient_28000_is_retried_once() {
    let f = Fault::Fatal(
        "28000",
        "no pg_hba.conf entry for host \"10.0.0.1\", user \"app\", database \"d\", SSL encryption",
    );
    let (db, _dir, r, _p) = up_via(&[f], &[]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn lasting_28000_fails_after_one_retry() {
    let f = Fault::Fatal("28000", "PAM authentication failed for user \"app\"");
    let (db, _dir, r, p) = up_via(&[f; 5], &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    let first = r.error_line();
    assert!(
        first.ends_with("PAM authentication failed for user \"app\" (SQLSTATE 28000)"),
        "{first}"
    );
    assert_eq!(p.accepted(), 2, "one retry, not more");
    assert_eq!(db.versions(), Vec::<i64>::new());
}

// Scenario 24: a reader after failover is refused until a writer answers.

#[test]
fn read_only_server_is_refused_until_it_becomes_writable() {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    query_url(
        &server_url(),
        &format!("ALTER DATABASE {} SET default_transaction_read_only = on", db.name),
    );
    let child = spawn_in(
        dir.path(),
        &["--database-url", &db.url, "--migrations", dir.path().to_str().unwrap(), "up"],
    );
    std::thread::sleep(Duration::from_millis(1200));
    query_url(
        &server_url(),
        &format!("ALTER DATABASE {} RESET default_transaction_read_only", db.name),
    );
    let r = finish(child);
    r.assert_ok();
    assert!(
        r.stderr.contains("waiting for the database to accept connections") && r.stderr.contains("read-only server"),
        "{}",
        r.stderr
    );
    assert_eq!(db.versions(), vec![1, 2, 3]);
}
