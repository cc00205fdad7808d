//! A TCP fault proxy between chatmigrate and the server, for the direct
//! path's failure scenarios (AWS reference §7, 17–24): each accepted
//! connection takes the next scripted [`Fault`] (then everything passes
//! through): a held connect, an EOF or reset during start-up, a FATAL
//! answered in the server's place, or a cut when the client sends a marker
//! (before forwarding it, or right after, so the server runs it and the
//! answer is lost). The proxy can also stop listening for a while (a
//! rebooting writer: connections are refused), from the start or after a cut.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Cut before `marker` (as `CutBefore`), then stop listening for this
    /// long: a writer that reboots refuses connections.
    CutThenRefuse(&'static [u8], Duration),
}

/// Until when the proxy refuses connections (not listening), shared with
/// the connections it serves.
type Down = Arc<Mutex<Option<Instant>>>;

pub struct Proxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(script: &[Fault]) -> Proxy {
        Proxy::start_refusing(script, Duration::ZERO)
    }

    /// A proxy that refuses connections for `down` (nothing listening on its
    /// port), then serves `script`.
    pub fn start_refusing(script: &[Fault], down: Duration) -> Proxy {
        let upstream: u16 = crate::schema::port().parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let down: Down = Arc::new(Mutex::new(Some(Instant::now() + down)));
        let (stop2, accepted2) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !stop2.load(Ordering::SeqCst) {
                if down.lock().unwrap().is_some_and(|t| Instant::now() < t) {
                    // Not listening: the kernel refuses connections.
                    listener = None;
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let Some(l) = listener.as_ref() else {
                    // Listen again on the same port (std sets SO_REUSEADDR).
                    if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                        l.set_nonblocking(true).unwrap();
                        listener = Some(l);
                    }
                    continue;
                };
                match l.accept() {
                    Ok((client, _)) => {
                        accepted2.fetch_add(1, Ordering::SeqCst);
                        client.set_nonblocking(false).unwrap();
                        let fault = script.lock().unwrap().pop_front();
                        let down = down.clone();
                        std::thread::spawn(move || serve(client, upstream, fault, down));
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

fn serve(mut client: TcpStream, upstream: u16, fault: Option<Fault>, down: Down) {
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
        Some(Fault::CutThenRefuse(m, _)) => Some((m, false)),
        _ => None,
    };
    std::thread::spawn(move || pipe(s2, c2, None));
    let cut_at_marker = pipe(client, server, cut);
    if let (true, Some(Fault::CutThenRefuse(_, d))) = (cut_at_marker, fault) {
        *down.lock().unwrap() = Some(Instant::now() + d);
    }
}

/// Copies bytes; with a marker, cuts before (`false`) or after (`true`) it.
/// Returns whether it cut at the marker.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<(&[u8], bool)>) -> bool {
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
                return true;
            }
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
    false
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
    let r = up_through(&proxy, &db, &dir, extra, &["up"]);
    (db, dir, r, proxy)
}

/// Runs `command` through `proxy` on `db` with the files of `dir`, with the
/// config lines `extra` (an environment of their own).
fn up_through(proxy: &Proxy, db: &Db, dir: &Dir, extra: &[&str], command: &[&str]) -> Run {
    let url = proxy.url(db);
    let mut args = vec!["--database-url", &url, "--migrations", dir.path().to_str().unwrap()];
    let conf_dir = Dir::new();
    let conf;
    if !extra.is_empty() {
        conf = conf_dir.write("chatmigrate.toml", format!("[environments.t]\n{}\n", extra.join("\n")));
        args.extend(["--config", conf.to_str().unwrap(), "--env", "t"]);
    }
    args.extend_from_slice(command);
    run_in(dir.path(), &args, &[])
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
    // V2 committed before the cut: the history says so and it is not re-run,
    // but this run applied it, and says so (once).
    assert_eq!(
        r.stdout
            .matches("applied V2 b (committed; its answer was lost with the connection, ")
            .count(),
        1,
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\n3 migration(s) applied to "), "{}", r.stdout);
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert_eq!(db.scalar("SELECT count(*) FROM b"), "0", "V2 ran once");

    // The JSON report lists it among the applied ones.
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start(&[Fault::CutAfter(b"cut-here-marker")]);
    let r = up_through(&proxy, &db, &dir, &[], &["--format", "json", "up"]);
    r.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let applied: Vec<(i64, bool)> = v["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["version"].as_i64().unwrap(), a["answer_lost"].as_bool().unwrap()))
        .collect();
    assert_eq!(applied, vec![(1, false), (2, true), (3, false)], "{}", r.stdout);
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

/// The wait after a reconnect: the lost connection's server session still
/// runs its batch, and holds the migration lock, for two more seconds.
#[test]
fn after_a_reconnect_the_wait_for_the_lost_sessions_lock_is_reported() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__b.sql",
        "CREATE TABLE b (id int);\nSELECT 'cut-here-marker';\nSELECT pg_sleep(2.5);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
    let proxy = Proxy::start(&[Fault::CutAfter(b"cut-here-marker")]);
    let r = up_through(&proxy, &db, &dir, &[], &["up"]);
    r.assert_ok();
    // The holder named is this run's own lost session.
    let wait = r
        .stderr
        .lines()
        .find(|l| l.starts_with("waiting for the migration lock: 1 s (attempt "))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(
        wait.contains(": held by pid ") && wait.contains("(application_name 'chatmigrate', "),
        "{wait}"
    );
    // The old session committed V2 while it held the lock.
    assert!(
        r.stdout
            .contains("applied V2 b (committed; its answer was lost with the connection, "),
        "{}",
        r.stdout
    );
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
    let (db, _dir, r, _p) = up_via(&[Fault::Hold(Duration::from_millis(2500))], &["connect_timeout = \"5s\""]);
    r.assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
    // Not a silent wait: reported while the attempt is still held.
    assert!(
        r.stderr.starts_with(
            "waiting for the database to accept connections: 1 s (attempt 1: no answer yet)\n\
             waiting for the database to accept connections: 2 s (attempt 1: no answer yet)\n"
        ),
        "{}",
        r.stderr
    );
}

// A refused connection: a writer that reboots, or nothing there at all.

#[test]
fn a_refused_reconnect_is_retried_within_resume_timeout() {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start(&[Fault::CutThenRefuse(b"cut-here-marker", Duration::from_millis(3000))]);
    // refused_timeout is for a server never reached; this run reached it.
    let r = up_through(&proxy, &db, &dir, &["refused_timeout = \"1s\""], &["up"]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("connection lost (V2 b: connection closed); reconnecting (attempt 1)"),
        "{}",
        r.stdout
    );
    // Refused for 3 s, past refused_timeout: retried, and said so.
    let waits: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("waiting for ")).collect();
    assert!(waits.len() >= 2, "{}", r.stderr);
    assert!(
        waits
            .iter()
            .all(|l| l.starts_with("waiting for the database to accept connections: ") && l.ends_with(": connection refused)")),
        "{}",
        r.stderr
    );
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn a_first_connect_refused_past_refused_timeout_stops_with_host_and_port() {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let proxy = Proxy::start_refusing(&[], Duration::from_secs(60));
    let started = Instant::now();
    let r = up_through(&proxy, &db, &dir, &["refused_timeout = \"2s\""], &["up"]);
    let took = started.elapsed();
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(5), "{took:?}");
    let waits: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("waiting for ")).collect();
    assert!(!waits.is_empty(), "{}", r.stderr);
    assert!(
        waits
            .iter()
            .all(|l| l.starts_with("waiting for the database to accept connections: ") && l.ends_with(": connection refused)")),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.error_line(),
        format!(
            "error: cannot connect to postgres@127.0.0.1:{}/{}: error connecting to server: Connection refused (os error 111)",
            proxy.port, db.name
        )
    );
    assert_eq!(
        r.hint(),
        format!("hint: nothing accepts connections on 127.0.0.1:{} (refused for 2 s): check host and port, and that the server is running; raise refused_timeout to wait longer for a server that is starting", proxy.port)
    );
    assert_eq!(proxy.accepted(), 0);
    assert_eq!(db.versions(), Vec::<i64>::new());
}

#[test]
fn a_first_connect_is_retried_while_the_server_starts() {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    // Default refused_timeout (10 s): a server that starts within it is waited for.
    let proxy = Proxy::start_refusing(&[], Duration::from_millis(2000));
    let r = up_through(&proxy, &db, &dir, &[], &["up"]);
    r.assert_ok();
    assert!(r.stderr.contains(": connection refused)\n"), "{}", r.stderr);
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
