//! One file per subcommand. Each resolves what it needs, calls the engine
//! (`runner`, `plan`) and returns its [`Outcome`]; `run` renders it in the
//! requested format (`render`) and returns the process exit code (0 ok, 1
//! found something). None re-implements the run loop or renders itself.

mod adopt;
mod baseline;
mod completions;
mod database;
mod diff;
mod down;
mod lambda;
mod lint;
mod man;
mod new;
mod repair;
mod status;
mod up;
mod verify;
mod wait;

use std::io::{IsTerminal, Write};

use crate::cli::{Cli, ColorChoice, Command, Format};
use crate::config::{Config, Overrides, ProcessEnv};
use crate::error::{Error, Result};
use crate::render::{self, Outcome, Style};
use crate::value::{self, Origin};

/// What every command gets: the resolved config and the output style.
pub struct Setup {
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
        format: match g.format {
            Format::Text => render::Format::Text,
            Format::Json => render::Format::Json,
            Format::Github => render::Format::Github,
            Format::Sarif => render::Format::Sarif,
        },
        color,
        quiet: g.quiet,
        verbose: g.verbose > 0,
    }
}

/// The subcommand's name, as typed.
fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Up(_) => "up",
        Command::Down(_) => "down",
        Command::Status(_) => "status",
        Command::New(_) => "new",
        Command::Verify => "verify",
        Command::Baseline(_) => "baseline",
        Command::Repair => "repair",
        Command::Lint(_) => "lint",
        Command::Adopt(_) => "adopt",
        Command::Diff(_) => "diff",
        Command::Lambda(_) => "lambda",
        Command::Wait(_) => "wait",
        Command::Database(_) => "database",
        Command::Completions(_) => "completions",
        Command::Man(_) => "man",
    }
}

/// The `--format` values each command has (every command renders text,
/// JSON and GitHub annotations; SARIF is `lint`'s; `lambda` answers each
/// invocation with JSON whatever the flag says).
fn formats(c: &Command) -> &'static [Format] {
    match c {
        Command::Lint(_) => &[Format::Text, Format::Json, Format::Github, Format::Sarif],
        Command::Up(_)
        | Command::Down(_)
        | Command::Status(_)
        | Command::New(_)
        | Command::Verify
        | Command::Baseline(_)
        | Command::Repair
        | Command::Adopt(_)
        | Command::Diff(_)
        | Command::Wait(_)
        | Command::Database(_) => &[Format::Text, Format::Json, Format::Github],
        Command::Lambda(_) => &[Format::Text, Format::Json, Format::Github, Format::Sarif],
        // What they print is the script or the page itself.
        Command::Completions(_) | Command::Man(_) => &[Format::Text],
    }
}

/// Refuses a `--format` the command does not have, before anything runs.
fn check_format(command: &str, has: &[Format], asked: Format) -> Result<()> {
    if has.contains(&asked) {
        return Ok(());
    }
    let name = |f: &Format| {
        clap::ValueEnum::to_possible_value(f)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    };
    let list: Vec<String> = has.iter().map(name).collect();
    Err(Error::Usage {
        message: format!("--format {} is not available for `{command}`", name(&asked)),
        hint: format!("`{command}` writes --format {}", list.join(" or ")),
    })
}

/// Runs the parsed command line, rendering to `out`; returns the exit code.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<i32> {
    check_format(command_name(&cli.command), formats(&cli.command), cli.global.format)?;
    // These two print what the command line is: no config is read.
    match &cli.command {
        Command::Completions(a) => return completions::run(a, out),
        Command::Man(a) => return man::run(a, out),
        // The configuration is read for each invocation (it may name an
        // environment). Boxed: the handler's future is deep (the whole
        // engine, per invocation).
        Command::Lambda(a) => return Box::pin(lambda::serve(&cli.global, a)).await,
        _ => {}
    }
    let style = style(&cli);
    let g = &cli.global;
    let mut o = Overrides {
        config_path: g.config.clone(),
        env: g.env.clone(),
        database_url: g.database_url.clone(),
        migrations: g.migrations.clone(),
        placeholders: g
            .placeholders
            .iter()
            .map(|p| crate::placeholders::parse_flag(p))
            .collect::<Result<_>>()?,
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
    cfg.progress = crate::retry::Progress::new(move |w| render::waiting(&style, w));
    if style.verbose {
        render::note(&format!(
            "config: {}; environment: {}; target: {}",
            cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()),
            cfg.env_name.as_deref().unwrap_or("none"),
            cfg.target_display()
        ));
    }
    let ctx = Setup { cfg, style };
    let mut outcome = match &cli.command {
        Command::Up(a) => up::run(&ctx, a, out).await?,
        Command::Down(a) => down::run(&ctx, a, out).await?,
        Command::Status(a) => status::run(&ctx, a).await?,
        Command::New(a) => new::run(&ctx, a)?,
        Command::Verify => verify::run(&ctx).await?,
        Command::Baseline(a) => baseline::run(&ctx, a).await?,
        Command::Repair => repair::run(&ctx).await?,
        Command::Lint(a) => lint::run(&ctx, a).await?,
        Command::Adopt(a) => adopt::run(&ctx, a).await?,
        Command::Diff(a) => diff::run(&ctx, a).await?,
        Command::Wait(a) => wait::run(&ctx, a).await?,
        Command::Database(c) => database::run(&ctx, c, out).await?,
        Command::Completions(_) | Command::Man(_) | Command::Lambda(_) => {
            unreachable!("run without a config, above")
        }
    };
    // One write for a long outcome (a status of 1,000 rows), not one a line.
    let mut buffered = std::io::BufWriter::new(&mut *out);
    render::outcome(&style, &mut buffered, &outcome)?;
    buffered.flush()?;
    drop(buffered);
    // `verify` reports a file that does not parse after the drift.
    if let Outcome::Verify(v) = &mut outcome {
        if let Some(e) = v.unreadable.take() {
            return Err(*e);
        }
    }
    Ok(outcome.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_the_command_does_not_have_is_refused() {
        assert!(check_format("up", &[Format::Text, Format::Json], Format::Json).is_ok());
        let e = check_format("man", &[Format::Text], Format::Json).unwrap_err();
        assert_eq!(e.to_string(), "--format json is not available for `man`");
        assert_eq!(e.hint().unwrap(), "`man` writes --format text");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn sarif_is_lint_s_only() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["cm", "--format", "sarif", "status"]).unwrap();
        let e = check_format(command_name(&cli.command), formats(&cli.command), cli.global.format).unwrap_err();
        assert_eq!(e.to_string(), "--format sarif is not available for `status`");
        assert_eq!(e.hint().unwrap(), "`status` writes --format text or json or github");
        let cli = Cli::try_parse_from(["cm", "--format", "sarif", "lint"]).unwrap();
        assert!(check_format(command_name(&cli.command), formats(&cli.command), cli.global.format).is_ok());
    }

    #[test]
    fn every_command_has_its_formats() {
        use clap::Parser;
        for args in [
            &["cm", "up"][..],
            &["cm", "status"],
            &["cm", "new", "x"],
            &["cm", "verify"],
            &["cm", "baseline", "--target", "1"],
            &["cm", "repair"],
            &["cm", "lint"],
            &["cm", "adopt"],
            &["cm", "diff"],
            &["cm", "wait"],
            &["cm", "database", "drop"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert!(
                formats(&cli.command).starts_with(&[Format::Text, Format::Json, Format::Github]),
                "{args:?}"
            );
        }
        for args in [&["cm", "completions", "bash"][..], &["cm", "man"]] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(formats(&cli.command), &[Format::Text], "{args:?}");
        }
    }
}
