//! Databases as users bring them (issue 13): one schema model, read from
//! any database through any backend; the expected schema of a set of
//! migrations, read from a scratch database they were applied to; the
//! typed differences between two schemas; and what the gate of `up` reads
//! from the live database (table sizes, objects that exist already).
//!
//! - [`model`]: the schema as plain data, keyed by name.
//! - [`introspect`]: a database's schema in a fixed number of catalog queries.
//! - [`diff`] and [`render`]: typed differences, as JSON and as text.
//! - [`scratch`]: the migrations applied to a temporary (or dev) database.
//! - [`objects`]: what a migration's statements create.
//! - [`live`]: the gate's one query per run.
//! - [`fix`]: `adopt --write-fix` (`up` on such a file is the runner's:
//!   `runner/fixrun.rs`).
//!
//! Used by `chatmigrate adopt`, `chatmigrate diff` and the runner's gate.

pub mod diff;
pub mod fix;
pub mod introspect;
pub mod live;
pub mod model;
pub mod objects;
pub mod render;
pub mod scratch;
