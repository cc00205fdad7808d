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

use super::db::{port, Db};

/// What the proxy does to one accepted connection (one per connection, in
/// script order; connections after the script pass through).
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

/// The running proxy on 127.0.0.1 (a free port), forwarding to the test
/// PostgreSQL; dropping it stops accepting connections.
pub struct Proxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    /// A proxy that serves `script`, one fault per accepted connection.
    pub fn start(script: &[Fault]) -> Proxy {
        Proxy::start_refusing(script, Duration::ZERO)
    }

    /// A proxy that refuses connections for `down` (nothing listening on its
    /// port), then serves `script`.
    pub fn start_refusing(script: &[Fault], down: Duration) -> Proxy {
        let upstream: u16 = port().parse().unwrap();
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
        let port = port();
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
            let _ = client.write_all(&super::tls_front::fatal_message(code, message));
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
