//! Command-line types (clap derive). The doc comments are the help text;
//! nothing here runs anything.
//!
//! One text per command and option, the same for `-h` and `--help` (every
//! doc comment is one paragraph, so clap has no separate long help), the
//! exit codes of each command below its options, the global options under a
//! heading of their own, and every default in the help. `completions` and
//! `man` render these same definitions (clap_complete, clap_mangen).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// PostgreSQL schema migrations, with the chat-history schema (history table, pgvector, 1024-dimension vectors, HNSW index) built in.
#[derive(Debug, Parser)]
#[command(name = "chatmigrate", version, long_about = None, after_help = EXIT_ALL)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes of every command (`chatmigrate --help`; README "Exit codes").
const EXIT_ALL: &str = "Exit codes:
  0         ok
  1         ran fine and found something: `status --exit-code` a migration not applied,
            `verify` drift or an error-level lint finding, `lint` an error-level finding
  2         error, usage errors included
  130, 143  `up` stopped by SIGINT (Ctrl-C) or SIGTERM";

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Environment from chatmigrate.toml ([environments.NAME]) [default: CHATMIGRATE_ENV, then default_env].
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
    /// The database as a URL, e.g. postgres://user@host:5432/db?sslmode=verify-full: the whole target [default: the environment's connection settings, under DATABASE_URL and PG*].
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Migration directory; repeat for several [default: the environment's migrations, else the built-in set].
    #[arg(long = "migrations", global = true, value_name = "DIR")]
    pub migrations: Vec<PathBuf>,
    /// A value for `${NAME}` in the migrations, over the config file's; repeat for several (docs/migrations.md) [default: the environment's placeholders].
    #[arg(long = "placeholder", global = true, value_name = "NAME=VALUE")]
    pub placeholders: Vec<String>,
    /// Config file [default: CHATMIGRATE_CONFIG, else ./chatmigrate.toml if present].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More output: the config file, environment, target and backend, and each migration as it starts.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour: auto is a terminal without NO_COLOR.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Output format: text, json (one JSON object on stdout, also for errors), github (text, plus GitHub workflow annotations for findings, drift and errors), sarif (SARIF 2.1.0; `lint` only).
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
    // Described in `--format`'s help (a doc comment here would make `-h`
    // and `--help` differ): text plus `::error file=…,line=…,col=…::`
    // workflow commands; SARIF 2.1.0 for code scanning (`lint` only).
    Github,
    Sarif,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations.
    #[command(after_help = "Exit codes:
  0         applied, or nothing to apply
  2         error; the failing migration was rolled back (without a transaction:
            recorded with the statements done, and the next `up` resumes it)
  130, 143  stopped by SIGINT (Ctrl-C) or SIGTERM; the next `up` continues")]
    Up(UpArgs),
    /// Revert the last applied migration (or several) with its undo file, V<version>__<name>.undo.sql.
    #[command(after_help = "Exit codes:
  0         undone, or nothing to undo
  2         error; a transactional undo was rolled back (without a transaction:
            logged with the statements done, and the next `down` resumes it)
  130, 143  stopped by SIGINT (Ctrl-C) or SIGTERM; the next `down` continues")]
    Down(DownArgs),
    /// Show every migration and its state: applied, pending, changed, renamed, missing, partial, failed; repeatable ones outdated; undoing.
    #[command(after_help = "Exit codes:
  0  ok (with --exit-code: every migration is applied)
  1  with --exit-code: a migration is pending, changed, renamed, missing, partial or failed
  2  error")]
    Status(StatusArgs),
    /// Create an empty migration file in the first migration directory.
    #[command(after_help = EXIT_OK_ERROR)]
    New(NewArgs),
    /// Check the files against the history and lint the files not applied yet; changes nothing.
    #[command(after_help = "Exit codes:
  0  no drift and no error-level finding
  1  drift (a changed, renamed or missing file) or an error-level lint finding
  2  could not run (a file that does not parse, no connection)")]
    Verify,
    /// Record migrations as applied without running them (adopting an existing database).
    #[command(after_help = EXIT_OK_ERROR)]
    Baseline(BaselineArgs),
    /// Accept the checksums and names of changed or renamed applied files and clear failed rows (each repair is logged).
    #[command(after_help = EXIT_OK_ERROR)]
    Repair,
    /// Check migrations for locking, transaction, pgvector, Citus and Data API hazards (docs/lint.md).
    #[command(after_help = "Exit codes:
  0  no error-level finding (warnings allowed)
  1  error-level findings
  2  could not run")]
    Lint(LintArgs),
    /// Wait until the database accepts a query, riding out a server that starts or an Aurora cluster that resumes.
    #[command(after_help = "Exit codes:
  0  the server accepts queries (also when the database does not exist yet: it says so)
  2  it did not within --timeout, or an error that waiting does not cure
     (a wrong password, a bad setting)")]
    Wait(WaitArgs),
    /// Create, drop or reset the database of a development environment (dev = true in chatmigrate.toml).
    #[command(subcommand, after_help = EXIT_DATABASE)]
    Database(DatabaseCommand),
    /// Print a shell completion script for bash, zsh, fish, powershell or elvish.
    #[command(after_help = "Install, e.g.:
  bash  chatmigrate completions bash > ~/.local/share/bash-completion/completions/chatmigrate
  zsh   chatmigrate completions zsh > ~/.zfunc/_chatmigrate   (with fpath+=~/.zfunc before compinit)
  fish  chatmigrate completions fish > ~/.config/fish/completions/chatmigrate.fish

Exit codes:
  0  printed
  2  error")]
    Completions(CompletionsArgs),
    /// Print the manual page chatmigrate(1), or write one page per command into a directory.
    #[command(after_help = "Read it with: chatmigrate man | man -l -

Exit codes:
  0  printed or written
  2  error")]
    Man(ManArgs),
    /// Bring a database made without chatmigrate under it: compare its schema with the one the migrations up to --target make (on a scratch database), then record them as applied if they match, or list the differences (docs/adopt.md).
    #[command(after_help = "Exit codes:
  0  the schemas matched; the migrations are recorded as applied
  1  the schemas differ; nothing was recorded (with --write-fix, a migration that fixes them was written)
  2  could not run")]
    Adopt(AdoptArgs),
    /// Show drift between the database's schema and the schema of its applied migrations (docs/adopt.md).
    #[command(after_help = "Exit codes:
  0  ran (with --exit-code: no drift)
  1  with --exit-code: the schemas differ
  2  could not run")]
    Diff(DiffArgs),
    /// Serve the AWS Lambda Runtime API (inside Lambda: AWS_LAMBDA_RUNTIME_API is set), docs/deploy.md.
    #[command(after_help = "Each invocation runs `up`, `status`, `verify` or `lint` and answers with their
JSON; a CloudFormation custom resource event runs `up` and answers
CloudFormation. The binary named `bootstrap` does this when started with no
arguments. Each invocation's outcome is its answer, not an exit code.

Exit codes:
  0  the Runtime API ended the loop
  2  not inside Lambda (AWS_LAMBDA_RUNTIME_API unset), or the Runtime API failed")]
    Lambda(LambdaArgs),
}

#[derive(Debug, Args)]
pub struct LambdaArgs {
    /// Time kept before the invocation's deadline: no migration starts later, and the one running is stopped (0s to 15min, at most a third of the invocation's time) [default: 10s].
    #[arg(long, value_name = "DURATION", env = "CHATMIGRATE_LAMBDA_MARGIN", allow_hyphen_values = true)]
    pub margin: Option<String>,
}

/// The exit codes of commands that either work or fail.
const EXIT_OK_ERROR: &str = "Exit codes:
  0  done
  2  error";

/// The exit codes of `database` and its commands.
const EXIT_DATABASE: &str = "Exit codes:
  0  done, also when there was nothing to do (the database existed, or did not)
  2  error, or refused: the environment is not marked dev = true";

#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Create the environment's database when it does not exist.
    #[command(after_help = EXIT_DATABASE)]
    Create,
    /// Drop the environment's database, closing the sessions connected to it.
    #[command(after_help = EXIT_DATABASE)]
    Drop,
    /// Drop the environment's database, create it again and apply every migration.
    #[command(after_help = EXIT_DATABASE)]
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// After creating the database, apply up to and including this version [default: every migration].
    #[arg(long, value_name = "VERSION")]
    pub target: Option<i64>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// How long to wait, e.g. 30s, 5min (1s to 24h) [default: the environment's resume_timeout, 120s unless set].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write chatmigrate.1 and one page per command (chatmigrate-up.1, ...) into this directory [default: print chatmigrate.1].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Compare with the migrations up to and including this version [default: the highest version whose objects all exist in the database].
    #[arg(long, value_name = "VERSION")]
    pub target: Option<i64>,
    /// When the schemas differ, write a migration that fixes what it can, e.g. adopt/V1__adopt_fix.sql (apply it with `chatmigrate up --migrations adopt`) [default: write none].
    #[arg(long, value_name = "FILE")]
    pub write_fix: Option<PathBuf>,
    /// An empty database to apply the migrations to [default: the environment's dev_url, else a temporary database].
    #[arg(long, value_name = "URL")]
    pub dev_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Exit 1 when the schemas differ.
    #[arg(long)]
    pub exit_code: bool,
    /// An empty database to apply the migrations to [default: the environment's dev_url, else a temporary database].
    #[arg(long, value_name = "URL")]
    pub dev_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Migration files or directories to report on [default: the environment's migrations]; the environment's whole set still gives the context (tables created earlier, Citus distribution).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only the migrations the target database has not applied (connects and reads the history; changes nothing).
    #[arg(long, conflicts_with = "paths")]
    pub pending: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply up to and including this version [default: every pending migration].
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
    /// How long to wait for another chatmigrate's lock, e.g. 60s, 5min (0s to 24h) [default: the environment's lock_wait, 60s unless set].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub lock_wait: Option<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Undo every applied migration above this version (0: all) [default: the last applied one].
    #[arg(long, value_name = "VERSION", conflicts_with = "steps")]
    pub target: Option<i64>,
    /// Undo the last N applied migrations [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: Option<u32>,
    /// Print the exact statements that would be sent, with transaction boundaries; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit 1 when a migration is pending, changed, renamed, missing, partial or failed.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name: letters, digits and underscores, e.g. add_user_email.
    pub name: String,
    /// Version n+1 of the highest existing one [default: the UTC time, YYYYMMDDHHMMSS].
    #[arg(long)]
    pub sequential: bool,
    /// Start the file with `-- chatmigrate:no-transaction`.
    #[arg(long)]
    pub no_transaction: bool,
    /// Also create its undo file, V<version>__<name>.undo.sql, for `chatmigrate down`.
    #[arg(long, conflicts_with = "repeatable")]
    pub undo: bool,
    /// Create a repeatable migration, R__<name>.sql: applied after the versioned ones, again whenever it changes.
    #[arg(long, conflicts_with_all = ["sequential", "no_transaction"])]
    pub repeatable: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["target", "from_refinery"])))]
pub struct BaselineArgs {
    /// Record every migration up to and including this version as applied.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<i64>,
    /// With --target on a database whose history already has rows: mark the versions it lacks anyway (refused otherwise, listing them).
    #[arg(long, conflicts_with = "from_refinery")]
    pub allow_existing: bool,
    /// Import a refinery history table, checking each file against refinery's checksum.
    #[arg(long)]
    pub from_refinery: bool,
    /// The refinery table to import.
    #[arg(long, default_value = "refinery_schema_history", value_name = "TABLE")]
    pub refinery_table: String,
}

/// The command line as clap sees it (for completions and the man page).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
