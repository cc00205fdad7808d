//! The runner: every command that touches a database, and the library, go
//! through here; rendering is done by the caller from the [`Event`]s and
//! the returned [`UpReport`].
//!
//! - `run`: the run loop of `up` ([`up`]): connect, plan, lock, re-plan,
//!   each pending migration's script built and walked, unlock and close on
//!   every path, reconnect after a lost connection;
//! - `script`: one script per pending migration, the exact sequence `up`
//!   sends for it; `walk` executes it, and `up --dry-run` renders the same
//!   script ([`dry_run_offline`] without a connection);
//! - `walk`: executing a script, statement by statement for a
//!   no-transaction file; `lock_retry`: a transactional migration's call,
//!   retried on lock_timeout;
//! - `lost`: what happened to a migration or statement whose answer never
//!   came (read from the history or the catalog, never sent again);
//! - `gate`: the pending files split and checked before anything is sent
//!   (objects that exist already, the lint with the live sizes);
//! - `signals`: SIGINT and SIGTERM; `create_database`: `--create-database`
//!   and its race between runners;
//! - `state`: what `status`, `verify`, `baseline` and `repair` read and
//!   write ([`load_state`], [`read_state`], [`with_lock`]);
//! - `progress`: a long index build's progress, read from a second
//!   connection while it runs;
//! - `event` and `outcome`: what the runner reports and returns.
//!
//! Unit tests run the loop against `fake`, an in-memory backend with
//! scripted failures.

mod create_database;
mod down;
mod event;
mod fixrun;
mod gate;
mod lock_retry;
mod lost;
mod outcome;
mod progress;
mod run;
mod script;
mod signals;
mod state;
mod walk;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use down::{down, DownOptions, DownReport, Undone};
pub use event::Event;
pub use outcome::{Applied, DryStep, Line, ShortOfTarget, UpReport};
pub use progress::{BuildProgress, Locker, NodeBuilds};
pub use run::{up, UpOptions};
pub use script::dry_run_offline;
pub use signals::DEADLINE;
pub use state::{load_state, read_state, with_lock};

pub(crate) use create_database::create_on;
pub(crate) use run::Outside;
