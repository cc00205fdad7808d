//! One file per subcommand. Each resolves what it needs, calls the engine
//! (`runner`, `plan`) and renders through `report`; none re-implements the
//! run loop. `run` returns the process exit code (0 ok, 1 found something).

mod baseline;
mod completions;
mod database;
mod lint;
mod man;
mod new;
mod repair;
mod status;
mod up;
mod verify;
mod wait;

use std::io::IsTerminal;

use crate::cli::{Cli, ColorChoice, Command, Format};
use crate::config::{Config, Overrides, ProcessEnv};
use crate::error::{Error, Result};
use crate::report::Style;
use crate::value::{self, Origin};

/// What every command gets: the resolved config and the output style.
pub struct Ctx {
    pub cfg: Config,
    pub style: Style,
}

/// Output style from the global flags (NO_COLOR honoured).
pub fn style(cli: &Cli) -> Style {
    let g = &cli.global;
    let color = match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
        }
    };
    Style {
        json: g.format == Format::Json,
        color,
        quiet: g.quiet,
        verbose: g.verbose > 0,
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<i32> {
    // These two print what the command line is; no config is read.
    match &cli.command {
        Command::Completions(a) => return completions::run(a),
        Command::Man(a) => return man::run(a),
        _ => {}
    }
    let style = style(&cli);
    let g = &cli.global;
    let mut o = Overrides {
        config_path: g.config.clone(),
        env: g.env.clone(),
        database_url: g.database_url.clone(),
        migrations: g.migrations.clone(),
        ..Overrides::default()
    };
    if let Command::Up(a) = &cli.command {
        o.create_database = a.create_database;
        o.allow_out_of_order = a.allow_out_of_order;
        if let Some(w) = &a.lock_wait {
            o.lock_wait = Some(value::duration("--lock-wait", Origin::Flag, w, value::LOCK_WAIT).map_err(Error::from)?);
        }
    }
    // `new` works without any database settings.
    let mut cfg = Config::load(&o, &ProcessEnv)?;
    cfg.progress = crate::retry::Progress::new(move |w| crate::report::waiting(&style, w));
    if style.verbose {
        eprintln!(
            "config: {}; environment: {}; target: {}",
            cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()),
            cfg.env_name.as_deref().unwrap_or("none"),
            cfg.target_display()
        );
    }
    let ctx = Ctx { cfg, style };
    match &cli.command {
        Command::Up(a) => up::run(&ctx, a).await,
        Command::Status(a) => status::run(&ctx, a).await,
        Command::New(a) => new::run(&ctx, a),
        Command::Verify => verify::run(&ctx).await,
        Command::Baseline(a) => baseline::run(&ctx, a).await,
        Command::Repair => repair::run(&ctx).await,
        Command::Lint(a) => lint::run(&ctx, a).await,
        Command::Wait(a) => wait::run(&ctx, a).await,
        Command::Database(c) => database::run(&ctx, c).await,
        Command::Completions(_) | Command::Man(_) => unreachable!("handled above"),
    }
}
