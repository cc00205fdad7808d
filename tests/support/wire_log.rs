//! A logging proxy between chatmigrate and a PostgreSQL server (the test
//! server or the live Citus coordinator): it passes every byte through and
//! records what the client sends, in arrival order, as the server receives
//! it: the text of each simple Query message and of each Parse message of
//! the extended protocol, per connection. What it records is what
//! `log_statement = 'all'` would log, without reading the server's log
//! (which the tests share, and which the live Citus cluster keeps apart).
//!
//! The proxy answers an SSLRequest or GSSENCRequest itself with "no" (the
//! client goes on in plain text, as with `sslmode=prefer`); a client that
//! requires TLS cannot be logged this way.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a client sent: which connection (numbered in accept order,
/// from 0), and the SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub connection: usize,
    pub sql: String,
}

/// The running proxy on 127.0.0.1 (a free port); dropping it stops accepting.
pub struct WireLog {
    pub port: u16,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;

impl WireLog {
    /// A proxy to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> WireLog {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2, upstream) = (log.clone(), stop.clone(), upstream.to_string());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let (log, upstream, id) = (log2.clone(), upstream.clone(), n);
                        n += 1;
                        std::thread::spawn(move || serve(client, &upstream, id, log));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        WireLog { port, log, stop }
    }

    /// `url` (a `postgres://` URL) pointed at this proxy instead of its
    /// host and port.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (userinfo, rest) = rest
            .rsplit_once('@')
            .map(|(u, r)| (format!("{u}@"), r))
            .unwrap_or((String::new(), rest));
        let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
        format!("{scheme}://{userinfo}127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for WireLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Proxies one connection: the server's bytes back as they come, the
/// client's message by message, logging its queries.
fn serve(mut client: TcpStream, upstream: &str, id: usize, log: Arc<Mutex<Vec<Request>>>) {
    // Start-up: answer encryption requests, forward the startup message.
    let startup = loop {
        let mut len = [0u8; 4];
        if client.read_exact(&mut len).is_err() {
            return;
        }
        let len = read_u32(&len) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        if client.read_exact(&mut body).is_err() {
            return;
        }
        let code = if body.len() >= 4 { read_u32(&body) } else { 0 };
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            if client.write_all(b"N").is_err() {
                return;
            }
            continue;
        }
        let mut msg = (len as u32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        break msg;
    };
    let Ok(mut server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    if server.write_all(&startup).is_err() {
        return;
    }
    let (mut s2, mut c2) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(Shutdown::Both);
    });
    loop {
        let mut head = [0u8; 5];
        if client.read_exact(&mut head).is_err() {
            break;
        }
        let len = read_u32(&head[1..]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        if client.read_exact(&mut body).is_err() {
            break;
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or_default()).into_owned();
        let sql = match head[0] {
            b'Q' => Some(text(&body)),
            // Parse: statement name, NUL, query, NUL, parameter types.
            b'P' => body.iter().position(|&c| c == 0).map(|i| text(&body[i + 1..])),
            _ => None,
        };
        if let Some(sql) = sql {
            log.lock().unwrap().push(Request { connection: id, sql });
        }
        if server.write_all(&head).and_then(|_| server.write_all(&body)).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
}
