//! A TLS front for the test PostgreSQL (whose build has no TLS), playing
//! what RDS does at the door: it answers the SSLRequest with `S`, completes
//! the handshake with a certificate of a test CA, refuses plaintext with
//! RDS's `rds.force_ssl` FATAL, and, in [`Auth::Iam`] mode, asks for a
//! cleartext password and checks it is an RDS IAM token (as the PAM module
//! does) before piping the session to the real server. Upstream, the roles
//! named `cm_trust_*` log in without a password (scripts/pg.sh's pg_hba rule),
//! so the front decides who gets in.
//!
//! [`Certs`] makes, once per test process, the CA, a second CA that signs
//! nothing here, and the server certificate (for DNS `localhost` only, so
//! `127.0.0.1` is a hostname mismatch), with the `openssl` command
//! scripts/deps.sh installs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The test PKI, in a directory that lives as long as the test process.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn get() -> &'static Certs {
        static CERTS: OnceLock<Certs> = OnceLock::new();
        CERTS.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("chatmigrate-tls-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let sh = r#"set -e
ca_ext='-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign'
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj '/CN=chatmigrate test CA' $ca_ext -keyout ca.key -out ca.crt
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj '/CN=chatmigrate other CA' $ca_ext -keyout other-ca.key -out other-ca.crt
openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr
printf '%s\n' subjectAltName=DNS:localhost basicConstraints=CA:FALSE extendedKeyUsage=serverAuth > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext -out server.crt
cat other-ca.crt ca.crt > bundle-last-matches.pem
"#;
            let out = Command::new("bash")
                .arg("-c")
                .arg(sh)
                .current_dir(&dir)
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
            Certs { dir }
        })
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn identity(&self) -> native_tls::Identity {
        let cert = std::fs::read(self.dir.join("server.crt")).unwrap();
        let key = std::fs::read(self.dir.join("server.key")).unwrap();
        native_tls::Identity::from_pkcs8(&cert, &key).expect("server identity")
    }
}

/// Who the front lets in.
#[derive(Clone, Copy, Debug)]
pub enum Auth {
    /// Pipe the start-up to the server as it is.
    PassThrough,
    /// Ask for a cleartext password, refuse the first `reject_first` tokens
    /// (an expired one) and anything that is not an IAM token for the user.
    Iam { reject_first: usize },
}

/// What the front saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted.
    connections: usize,
    /// TLS sessions completed.
    tls_sessions: usize,
    /// Start-ups refused because they came without TLS.
    plaintext_refused: usize,
    /// Passwords received in IAM mode, in order.
    tokens: Vec<String>,
}

pub struct TlsFront {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

const SSL_REQUEST: u32 = 80877103;

impl TlsFront {
    pub fn start(auth: Auth) -> TlsFront {
        let upstream: u16 = super::db::port().parse().unwrap();
        let acceptor = native_tls::TlsAcceptor::new(Certs::get().identity()).unwrap();
        let acceptor = tokio_native_tls::TlsAcceptor::from(acceptor);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        a = listener.accept() => {
                            let Ok((sock, _)) = a else { continue };
                            seen2.lock().unwrap().connections += 1;
                            let (acceptor, seen) = (acceptor.clone(), seen2.clone());
                            tokio::spawn(async move {
                                let _ = serve(sock, acceptor, auth, upstream, seen).await;
                            });
                        }
                    }
                }
            });
        });
        TlsFront {
            port,
            seen,
            shutdown: Some(tx),
        }
    }

    pub fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }

    pub fn tls_sessions(&self) -> usize {
        self.seen.lock().unwrap().tls_sessions
    }

    pub fn plaintext_refused(&self) -> usize {
        self.seen.lock().unwrap().plaintext_refused
    }

    pub fn tokens(&self) -> Vec<String> {
        self.seen.lock().unwrap().tokens.clone()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

type Io = std::io::Result<()>;

async fn serve(
    mut sock: tokio::net::TcpStream,
    acceptor: tokio_native_tls::TlsAcceptor,
    auth: Auth,
    upstream: u16,
    seen: Arc<Mutex<Seen>>,
) -> Io {
    let first = read_packet(&mut sock, false).await?;
    if first.len() != 8 || first[4..8] != SSL_REQUEST.to_be_bytes() {
        seen.lock().unwrap().plaintext_refused += 1;
        let (user, db) = startup_fields(&first);
        let msg = format!("no pg_hba.conf entry for host \"127.0.0.1\", user \"{user}\", database \"{db}\", no encryption");
        return fatal(&mut sock, "28000", &msg).await;
    }
    sock.write_all(b"S").await?;
    let mut tls = acceptor.accept(sock).await.map_err(std::io::Error::other)?;
    seen.lock().unwrap().tls_sessions += 1;
    let startup = read_packet(&mut tls, false).await?;
    if let Auth::Iam { reject_first } = auth {
        // AuthenticationCleartextPassword, as the rds_iam PAM path asks.
        tls.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
        let p = read_packet(&mut tls, true).await?;
        let token = String::from_utf8_lossy(&p[5..p.len().saturating_sub(1)]).to_string();
        let n = {
            let mut s = seen.lock().unwrap();
            s.tokens.push(token.clone());
            s.tokens.len()
        };
        let (user, _) = startup_fields(&startup);
        let looks_right = token.contains("Action=connect")
            && token.contains(&format!("DBUser={user}"))
            && token.contains("X-Amz-Signature=")
            && token.contains("X-Amz-Expires=900");
        if n <= reject_first || !looks_right {
            return fatal(&mut tls, "28000", &format!("PAM authentication failed for user \"{user}\"")).await;
        }
    }
    let mut server = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await?;
    server.write_all(&startup).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
    Ok(())
}

/// Reads a start-up packet (length first) or, with `typed`, a regular
/// message (type byte, then length).
async fn read_packet<S: tokio::io::AsyncRead + Unpin>(s: &mut S, typed: bool) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if typed {
        out.push(s.read_u8().await?);
    }
    let len = s.read_u32().await?;
    out.extend_from_slice(&len.to_be_bytes());
    let mut rest = vec![0u8; (len as usize).saturating_sub(4)];
    s.read_exact(&mut rest).await?;
    out.extend(rest);
    Ok(out)
}

/// `user` and `database` from a start-up message.
fn startup_fields(p: &[u8]) -> (String, String) {
    let body = p.get(8..).unwrap_or_default();
    let parts: Vec<String> = body.split(|b| *b == 0).map(|s| String::from_utf8_lossy(s).to_string()).collect();
    let get = |k: &str| {
        parts
            .chunks(2)
            .find(|c| c[0] == k)
            .and_then(|c| c.get(1).cloned())
            .unwrap_or_default()
    };
    (get("user"), get("database"))
}

async fn fatal<S: tokio::io::AsyncWrite + Unpin>(s: &mut S, code: &str, message: &str) -> Io {
    s.write_all(&fatal_message(code, message)).await?;
    s.shutdown().await
}

/// A FATAL ErrorResponse message, as a server sends it before closing.
pub fn fatal_message(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, v) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', message)] {
        body.push(tag);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    msg.extend(body);
    msg
}
