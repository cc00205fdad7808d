//! One database reached two ways: a Data API test server and a config with
//! two environments, `direct` (the database's URL) and `aurora` (the Data
//! API, same database), as docs/aurora.md shows for one `st_chat_db`. For
//! the tests that mix transports on one database (the lock protocol, the
//! differential workload).

use std::path::PathBuf;
use std::process::Child;

use super::cli::{command, run_in, spawn, Run, AWS_ENV};
use super::dataapi::{DataApiServer, Options};
use super::db::server_url;
use super::dir::Dir;

/// A Data API test server and the configs that reach databases through it.
pub struct Both {
    pub server: DataApiServer,
    pub conf: Dir,
}

impl Both {
    /// The Data API server runs its SQL on the test PostgreSQL.
    pub fn start(opts: Options) -> Both {
        Both::on(&server_url(), opts)
    }

    /// The Data API server runs its SQL on the server at `pg_url`.
    pub fn on(pg_url: &str, opts: Options) -> Both {
        Both {
            server: DataApiServer::start(pg_url, opts),
            conf: Dir::new(),
        }
    }

    /// Writes `<db>.toml`: `direct` (URL `url`) and `aurora` (Data API,
    /// database `db`), each with `extra` lines.
    pub fn config(&self, db: &str, url: &str, extra: &[&str]) -> PathBuf {
        let extra = extra.join("\n");
        self.conf.write(
            &format!("{db}.toml"),
            format!(
                "[environments.direct]\nurl = \"{url}\"\n{extra}\n\n\
                 [environments.aurora]\n{}resume_timeout = \"30s\"\n{extra}\n",
                self.server.environment(db)
            ),
        )
    }

    fn args(&self, db: &str, env: &str, migrations: &Dir, args: &[&str]) -> Vec<String> {
        let conf = self.conf.path().join(format!("{db}.toml"));
        let mut full: Vec<String> = vec![
            "--config".into(),
            conf.display().to_string(),
            "--env".into(),
            env.into(),
            "--migrations".into(),
            migrations.path().display().to_string(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        full
    }

    /// Runs the binary on database `db` through `env` (written by `config`).
    pub fn run(&self, db: &str, env: &str, migrations: &Dir, args: &[&str]) -> Run {
        let full = self.args(db, env, migrations, args);
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        run_in(self.conf.path(), &full, &AWS_ENV)
    }

    /// Starts the binary in the background, like `run`.
    pub fn spawn(&self, db: &str, env: &str, migrations: &Dir, args: &[&str]) -> Child {
        let full = self.args(db, env, migrations, args);
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        spawn(command(self.conf.path(), &full, &AWS_ENV))
    }
}
