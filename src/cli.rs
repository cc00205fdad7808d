//! Command-line types (clap derive). The doc comments are the `--help` text;
//! nothing here runs anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// PostgreSQL schema migrations, with the chat-history schema (history
/// table, pgvector, 1024-dimension vectors, HNSW index) built in.
///
/// Exit codes: 0 ok; 1 ran fine and found something (pending with
/// `status --exit-code`, drift in `verify`); 2 error.
#[derive(Debug, Parser)]
#[command(name = "chatmigrate", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Environment from chatmigrate.toml ([environments.NAME]); default: CHATMIGRATE_ENV, then `default_env`.
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
    /// Database URL, e.g. postgres://user@host:5432/db?sslmode=verify-full (beats DATABASE_URL and the file).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Migration directory; repeat for several. Overrides the environment's directories and the built-in set.
    #[arg(long = "migrations", global = true, value_name = "DIR")]
    pub migrations: Vec<PathBuf>,
    /// Config file (default: ./chatmigrate.toml if present, or CHATMIGRATE_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More output: the config file, environment, target and backend, and each migration as it starts.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Output format: text, json (one JSON document on stdout), github (text, plus GitHub workflow annotations for findings, drift and errors), sarif (SARIF 2.1.0; `lint` only).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// Text, plus `::error file=…,line=…,col=…::` workflow commands (docs/ci.md).
    Github,
    /// SARIF 2.1.0 for code scanning (`lint` only; docs/ci.md).
    Sarif,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations.
    Up(UpArgs),
    /// Show every migration: applied, pending, changed, missing, partial, failed.
    Status(StatusArgs),
    /// Create a new migration file.
    New(NewArgs),
    /// Check the files against the history; changes nothing. Exit 1 on drift.
    Verify,
    /// Record migrations as applied without running them (adopting an existing database).
    Baseline(BaselineArgs),
    /// Accept changed checksums of applied files and clear failed rows (each repair is logged).
    Repair,
    /// Check migrations for locking, transaction, pgvector, Citus and Data API hazards (docs/lint.md).
    ///
    /// Exit 0: no error-level finding (warnings allowed); 1: error-level findings; 2: could not run.
    Lint(LintArgs),
    /// Bring a database made without chatmigrate under it (docs/adopt.md).
    ///
    /// Compares the database's schema with the schema the migrations up to
    /// --version make (applied to a scratch database). If they match, records
    /// them as applied, like `baseline`; if not, records nothing, prints the
    /// differences and exits 1 (with --write-fix, also writes a migration
    /// that turns the database's schema into the expected one).
    Adopt(AdoptArgs),
    /// Show drift between the database's schema and the schema of its applied migrations (docs/adopt.md).
    ///
    /// Exit 0 (1 on drift with --exit-code); 2: could not run.
    Diff(DiffArgs),
    /// Serve the AWS Lambda Runtime API (inside Lambda: AWS_LAMBDA_RUNTIME_API is set), docs/deploy.md.
    ///
    /// Each invocation runs `up`, `status`, `verify` or `lint` and answers with their JSON; a
    /// CloudFormation custom resource event runs `up` and answers CloudFormation. The binary named
    /// `bootstrap` does this when started with no arguments.
    Lambda(LambdaArgs),
}

#[derive(Debug, Args)]
pub struct LambdaArgs {
    /// Time kept before the invocation's deadline: no migration starts later, and the one running is stopped (0s to 15min; default 10s, at most a third of the invocation's time).
    #[arg(long, value_name = "DURATION", env = "CHATMIGRATE_LAMBDA_MARGIN", allow_hyphen_values = true)]
    pub margin: Option<String>,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Compare with the migrations up to and including this version (default: the highest version whose objects all exist in the database).
    #[arg(long, value_name = "VERSION")]
    pub version: Option<i64>,
    /// When the schemas differ, write a migration that fixes what it can, e.g. adopt/V1__adopt_fix.sql (apply it with `chatmigrate up --migrations adopt`).
    #[arg(long, value_name = "FILE")]
    pub write_fix: Option<PathBuf>,
    /// An empty database to apply the migrations to instead of a temporary one (beats dev_url).
    #[arg(long, value_name = "URL")]
    pub dev_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Exit 1 when the schemas differ.
    #[arg(long)]
    pub exit_code: bool,
    /// An empty database to apply the migrations to instead of a temporary one (beats dev_url).
    #[arg(long, value_name = "URL")]
    pub dev_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Migration files or directories to report on (default: the environment's migrations). The environment's whole set still gives the context (tables created earlier, Citus distribution).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only the migrations the target database has not applied (connects and reads the history; changes nothing).
    #[arg(long, conflicts_with = "paths")]
    pub pending: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply up to and including this version.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<i64>,
    /// Print the exact statements that would be sent, with transaction boundaries; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Create the database first (through the maintenance database) when it does not exist. Refused on Citus, with the steps (docs/citus.md).
    #[arg(long)]
    pub create_database: bool,
    /// Apply files whose version is below the highest applied one (recorded as out of order).
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// How long to wait for another chatmigrate's lock, e.g. 60s, 5min (0s to 24h).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub lock_wait: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit 1 when anything is pending, changed, missing, partial or failed.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name: letters, digits and underscores, e.g. add_user_email.
    pub name: String,
    /// Version n+1 of the highest existing one, instead of a UTC timestamp.
    #[arg(long)]
    pub sequential: bool,
    /// Start the file with `-- chatmigrate:no-transaction`.
    #[arg(long)]
    pub no_transaction: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["version", "from_refinery"])))]
pub struct BaselineArgs {
    /// Record every migration up to and including this version as applied.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<i64>,
    /// With --version on a database whose history already has rows: mark the versions it lacks anyway (refused otherwise, listing them).
    #[arg(long, conflicts_with = "from_refinery")]
    pub allow_existing: bool,
    /// Import a refinery history table, checking each file against refinery's checksum.
    #[arg(long)]
    pub from_refinery: bool,
    /// The refinery table to import.
    #[arg(long, default_value = "refinery_schema_history", value_name = "TABLE")]
    pub refinery_table: String,
}
