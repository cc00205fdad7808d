//! The lint registry: rules over parsed migrations, one file per rule in
//! `rules/`, registered in the one list [`RULES`].
//!
//! `up` runs the error-level rules on the migrations it is about to apply,
//! after reading the history and before it takes the lock or writes
//! anything; a finding stops it with the rule id, `file:line:col` and the
//! fix. `verify` runs them on every file.

pub mod rules;

use crate::error::{Error, Location};
use crate::migration::Migration;

/// How serious a finding is. Error-level findings stop `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// One problem found by one rule in one statement.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static str,
    pub level: Level,
    pub location: Location,
    pub excerpt: String,
    pub message: String,
    pub help: String,
}

/// A rule: a stable kebab-case id, a default level, and a check over one
/// migration (with its statements split).
pub struct Rule {
    pub id: &'static str,
    pub level: Level,
    pub summary: &'static str,
    /// Whether `-- chatmigrate:ignore <id>` may silence it (not for what the
    /// server would refuse anyway).
    pub ignorable: bool,
    pub check: fn(&Migration, &mut Vec<Finding>),
}

/// Every rule, in reporting order. Adding a rule: a file in `rules/`, one
/// line here, a page in `docs/rules/<id>.md`.
pub static RULES: &[&Rule] = &[&rules::transaction_incompatible::RULE];

/// Runs every rule over prepared migrations, honouring
/// `-- chatmigrate:ignore <rule>` directives.
pub fn check(migrations: &[Migration]) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in migrations {
        for rule in RULES {
            if rule.ignorable && m.directives.ignores.iter().any(|(id, _)| id == rule.id) {
                continue;
            }
            (rule.check)(m, &mut out);
        }
    }
    out
}

/// Runs the error-level rules and turns the first finding into an error.
pub fn gate(migrations: &[Migration]) -> Result<(), Error> {
    let errors: Vec<Finding> = check(migrations).into_iter().filter(|f| f.level == Level::Error).collect();
    match errors.first() {
        None => Ok(()),
        Some(f) => Err(Error::Lint {
            location: f.location.clone(),
            rule: f.rule.to_string(),
            message: format!("{} (`{}`)", f.message, f.excerpt),
            help: f.help.clone(),
            more: errors.len() - 1,
        }),
    }
}
