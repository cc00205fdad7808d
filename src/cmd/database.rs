//! `chatmigrate database create|drop|reset`: the database of a development
//! environment (`dev = true`; refused for any other, with the reason, see
//! [`crate::database::check_dev`]). `create` is a no-op when it exists,
//! `drop` when it does not; `drop` closes the sessions connected to it;
//! `reset` drops it, creates it and applies the migrations, as sqlx-cli's
//! `database reset` does, so a dev database is back to a known state in one
//! command.

use std::io::Write;

use serde_json::json;

use crate::backend::Purpose;
use crate::cli::DatabaseCommand;
use crate::error::Result;
use crate::render::{self, Done, Format, Outcome};
use crate::{config::Config, database};

pub async fn run(ctx: &super::Setup, cmd: &DatabaseCommand, out: &mut dyn Write) -> Result<Outcome> {
    let cfg = &ctx.cfg;
    match cmd {
        DatabaseCommand::Create => {
            database::check_dev(cfg, "create")?;
            let created = database::create(cfg, Purpose::WRITE).await?;
            Ok(Outcome::Done(said(cfg, "create", created)))
        }
        DatabaseCommand::Drop => {
            database::check_dev(cfg, "drop")?;
            let dropped = database::drop(cfg, "drop").await?;
            Ok(Outcome::Done(said(cfg, "drop", dropped)))
        }
        DatabaseCommand::Reset(args) => {
            database::check_dev(cfg, "reset")?;
            let dropped = database::drop(cfg, "reset").await?;
            // The drop's line first, then `up`'s (with JSON, only `up`'s
            // document: its created_database says the rest).
            if ctx.style.format == Format::Text {
                render::outcome(&ctx.style, out, &Outcome::Done(said(cfg, "drop", dropped)))?;
            }
            // `up --create-database`: it creates the database and says so.
            let cfg = Config {
                create_database: true,
                ..cfg.clone()
            };
            super::up::apply(&cfg, &ctx.style, args.target, false, out).await
        }
    }
}

/// `created database st_chat_db on postgres@127.0.0.1:54329`, or what was
/// found instead, and its JSON.
fn said(cfg: &Config, action: &str, changed: bool) -> Done {
    let name = &cfg.pg.dbname;
    let target = cfg.target_display();
    let server = target.rsplit_once('/').map(|(s, _)| s).unwrap_or(&target);
    let message = match (action, changed) {
        ("create", true) => format!("created database {name} on {server}"),
        ("create", false) => format!("database {name} already exists on {server}: nothing to create"),
        (_, true) => format!("dropped database {name} on {server}"),
        (_, false) => format!("database {name} does not exist on {server}: nothing to drop"),
    };
    Done::new(
        message,
        json!({"action": action, "database": name, "server": server, "changed": changed}),
    )
}
