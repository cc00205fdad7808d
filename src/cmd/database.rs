//! `chatmigrate database create|drop|reset`: the database of a development
//! environment (`dev = true`; refused for any other, with the reason, see
//! [`crate::database::check_dev`]). `create` is a no-op when it exists,
//! `drop` when it does not; `drop` closes the sessions connected to it;
//! `reset` drops it, creates it and applies the migrations, as sqlx-cli's
//! `database reset` does, so a dev database is back to a known state in one
//! command.

use serde_json::json;

use crate::backend::Purpose;
use crate::cli::DatabaseCommand;
use crate::error::Result;
use crate::report::{self, Style};
use crate::{config::Config, database};

pub async fn run(ctx: &super::Ctx, cmd: &DatabaseCommand) -> Result<i32> {
    let cfg = &ctx.cfg;
    match cmd {
        DatabaseCommand::Create => {
            database::check_dev(cfg, "create")?;
            let created = database::create(cfg, Purpose::WRITE, false).await?;
            say(&ctx.style, cfg, "create", created)?;
            Ok(0)
        }
        DatabaseCommand::Drop => {
            database::check_dev(cfg, "drop")?;
            let dropped = database::drop(cfg, "drop").await?;
            say(&ctx.style, cfg, "drop", dropped)?;
            Ok(0)
        }
        DatabaseCommand::Reset(args) => {
            database::check_dev(cfg, "reset")?;
            let dropped = database::drop(cfg, "reset").await?;
            if !ctx.style.json {
                say(&ctx.style, cfg, "drop", dropped)?;
            }
            // `up --create-database`: it creates the database and says so.
            let cfg = Config {
                create_database: true,
                ..cfg.clone()
            };
            super::up::apply(&cfg, &ctx.style, args.target, false).await
        }
    }
}

/// `created database st_chat_db on postgres@127.0.0.1:54329`, or what was
/// found instead.
fn say(style: &Style, cfg: &Config, action: &str, changed: bool) -> Result<()> {
    let name = &cfg.pg.dbname;
    let target = cfg.target_display();
    let server = target.rsplit_once('/').map(|(s, _)| s).unwrap_or(&target);
    let message = match (action, changed) {
        ("create", true) => format!("created database {name} on {server}"),
        ("create", false) => format!("database {name} already exists on {server}: nothing to create"),
        (_, true) => format!("dropped database {name} on {server}"),
        (_, false) => format!("database {name} does not exist on {server}: nothing to drop"),
    };
    report::done(
        style,
        &mut std::io::stdout().lock(),
        &message,
        json!({"action": action, "database": name, "server": server, "changed": changed}),
    )?;
    Ok(())
}
