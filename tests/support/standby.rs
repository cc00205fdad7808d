//! Test support: a primary and a hot standby of their own, made from the
//! PostgreSQL binaries the suite runs on (`CHATMIGRATE_PG_BIN`): `initdb`, a
//! primary on a free port, `pg_basebackup -R` of it into a second directory,
//! started as a streaming standby (`pg_is_in_recovery()` is true there).
//! Both trust local TCP connections and are stopped (immediate) and deleted
//! on drop. As root the servers run as the system user `chatmigrate_pg`,
//! like scripts/pg.sh's server (postgres refuses to run as root).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::db::query_url;
use super::wait_until;

/// The system user that runs the servers when the tests run as root.
const PG_USER: &str = "chatmigrate_pg";

pub struct Pair {
    pub primary: u16,
    pub standby: u16,
    bin: PathBuf,
    tmp: tempfile::TempDir,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pair {
    /// Starts the primary and its standby (a few seconds).
    pub fn start() -> Pair {
        let bin =
            PathBuf::from(std::env::var("CHATMIGRATE_PG_BIN").expect("CHATMIGRATE_PG_BIN is not set: run the tests with scripts/test.sh"));
        let tmp = tempfile::tempdir().unwrap();
        let pair = Pair {
            primary: free_port(),
            standby: free_port(),
            bin,
            tmp,
        };
        if is_root() {
            let ok = Command::new("chown").args(["-R", PG_USER]).arg(pair.tmp.path()).status().unwrap();
            assert!(ok.success(), "chown the standby's directory to {PG_USER}");
        }
        let primary = pair.dir("primary");
        pair.run(
            "initdb",
            &[
                "-D",
                &primary,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
        );
        pair.start_server(&primary, pair.primary);
        let standby = pair.dir("standby");
        pair.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pair.primary.to_string(),
                "-U",
                "postgres",
                "-D",
                &standby,
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        pair.start_server(&standby, pair.standby);
        pair
    }

    fn dir(&self, name: &str) -> String {
        self.tmp.path().join(name).display().to_string()
    }

    /// Runs a PostgreSQL program (as the service user when root), asserting success.
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        c.args(args).current_dir(self.tmp.path());
        for k in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"] {
            c.env_remove(k);
        }
        let out = c.output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start_server(&self, data: &str, port: u16) {
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=20",
            self.tmp.path().display()
        );
        let log = format!("{data}.log");
        self.run("pg_ctl", &["-D", data, "-l", &log, "-o", &opts, "-w", "-t", "60", "start"]);
    }

    /// A URL for database `db` on `port` (trust: no password).
    pub fn url(port: u16, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }

    /// Waits until the standby has replayed everything the primary has written.
    pub fn wait_replayed(&self) {
        let lsn = query_url(&Pair::url(self.primary, "postgres"), "SELECT pg_current_wal_lsn()::text")[0][0]
            .clone()
            .unwrap();
        let standby = Pair::url(self.standby, "postgres");
        wait_until(30, "the standby to replay the primary's WAL", || {
            query_url(&standby, &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))[0][0].as_deref() == Some("t")
        });
    }

    /// Promotes the standby (a failover): it takes writes from then on.
    pub fn promote(&self) {
        self.run("pg_ctl", &["-D", &self.dir("standby"), "-w", "promote"]);
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for name in ["standby", "primary"] {
            let data = self.dir(name);
            let exe = self.bin.join("pg_ctl");
            let mut c = if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", PG_USER, "--"]).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            let _ = c.args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
