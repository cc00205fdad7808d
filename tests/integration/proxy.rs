//! A TCP proxy between chatmigrate and the server that cuts the connection
//! when the client sends a marker: before forwarding it (the server never
//! sees the migration) or right after (the server runs it, the answer is lost).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

#[derive(Clone, Copy)]
enum Cut {
    Before,
    After,
}

struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16, marker: &'static [u8], cut: Cut) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        // server -> client
                        std::thread::spawn(move || pipe(s2, c2, None, cut));
                        // client -> server, watching for the marker
                        std::thread::spawn(move || pipe(client, server, Some(marker), cut));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy { port, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, marker: Option<&[u8]>, cut: Cut) {
    let mut buf = [0u8; 65536];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if let Some(pos) = marker.and_then(|m| chunk.windows(m.len()).position(|w| w == m)) {
            match cut {
                Cut::Before => {
                    let _ = to.write_all(&chunk[..pos]);
                }
                Cut::After => {
                    // The server gets the whole batch; the client loses the
                    // connection before any answer.
                    let _ = to.write_all(chunk);
                    let _ = from.shutdown(Shutdown::Both);
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn via(db: &Db, proxy: &Proxy) -> String {
    let port = crate::schema::port();
    db.url.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{}", proxy.port))
}

fn files(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write(
        "V2__b.sql",
        "CREATE TABLE b (id int);\nSELECT 'cut-here-marker';\nCREATE TABLE b2 (id int);\n",
    );
    dir.write("V3__c.sql", "CREATE TABLE c (id int);\n");
}

/// Runs `up` on a fresh database through a proxy that cuts at V2's marker;
/// the run must fail with exit 2.
fn up_through_proxy(cut: Cut) -> (Db, Dir, Run) {
    let (db, dir) = (Db::new(), Dir::new());
    files(&dir);
    let port: u16 = crate::schema::port().parse().unwrap();
    let proxy = Proxy::start(port, b"cut-here-marker", cut);
    let url = via(&db, &proxy);
    let r = run_in(
        dir.path(),
        &["--database-url", &url, "--migrations", dir.path().to_str().unwrap(), "up"],
        &[],
    );
    assert_eq!(r.code, 2, "{r:#?}");
    (db, dir, r)
}

#[test]
fn connection_cut_before_the_server_sees_the_migration() {
    let (db, dir, r) = up_through_proxy(Cut::Before);
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: connection lost during V2 b (the server rolled it back: it is not applied): "),
        "{first}"
    );
    assert!(r
        .hint()
        .starts_with("hint: check the network or server, then run `chatmigrate up` again"));
    assert_eq!(db.versions(), vec![1]);
    assert!(!db.table_exists("b"));
    // The next run (direct) applies it once.
    cm(&db, &dir, &["up"]).assert_ok();
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn connection_cut_after_commit_is_resolved_from_history_not_resent() {
    let (db, dir, r) = up_through_proxy(Cut::After);
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: connection lost during V2 b (its COMMIT reached the server: it is applied and recorded): "),
        "{first}"
    );
    assert_eq!(db.versions(), vec![1, 2]);
    assert!(db.table_exists("b2"));
    let r = cm(&db, &dir, &["up"]);
    r.assert_ok();
    assert!(!r.stdout.contains("applied V2"), "V2 applied twice: {}", r.stdout);
    assert_eq!(db.versions(), vec![1, 2, 3]);
}
