//! The `chatmigrate` binary: parse the command line, run, print an error and
//! its hint on stderr, exit 0 (ok), 1 (found something) or 2 (error). When
//! stdout's reader goes away (`| head`), the command ends quietly with exit
//! 0, as ripgrep does (an error of the command itself still exits 2).
//!
//! Nothing ends in a raw panic: a panic is caught here and reported like any
//! error (kind `internal`, with `--format json` as the JSON error object),
//! exit 2; the backtrace is printed only when RUST_BACKTRACE asks for it.
//!
//! Started with no arguments as `bootstrap` (AWS Lambda's custom runtime),
//! or wherever `AWS_LAMBDA_RUNTIME_API` is set (a container image's
//! entry point), it runs `chatmigrate lambda`.

use std::ffi::OsString;
use std::io::Write;

use chatmigrate::__private::error;
use chatmigrate::__private::render::{self, Stdout};
use chatmigrate::Error;
use clap::Parser;

fn main() {
    std::panic::set_hook(Box::new(on_panic));
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if started_by_lambda(&args) {
        args.push("lambda".into());
    }
    let cli = match chatmigrate::__private::cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => std::process::exit(usage(e, wants_json(&args))),
    };
    let style = chatmigrate::__private::cmd::style(&cli);
    let mut out = Stdout::new();
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, &mut out)))
        .unwrap_or_else(|payload| Err(error::internal(None, payload.as_ref())));
    let code = match code {
        Ok(code) => code,
        Err(e) => {
            render::error(&style, &mut out, &e);
            e.exit_code()
        }
    };
    let _ = out.flush();
    // The reader went away: the command ends quietly (an error of its own
    // was reported above, and keeps its code).
    if out.closed() && code < 2 {
        std::process::exit(0);
    }
    std::process::exit(code);
}

fn run(cli: chatmigrate::__private::cli::Cli, out: &mut Stdout) -> Result<i32, Error> {
    // A failpoint for the test of this catch (debug builds only).
    #[cfg(debug_assertions)]
    if std::env::var_os("CHATMIGRATE_TEST_PANIC").is_some_and(|v| v == "main") {
        panic!("test panic in main");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(chatmigrate::__private::cmd::run(cli, out))
}

/// The panic hook: note where it happened (for the error line printed where
/// it is caught); the backtrace only with RUST_BACKTRACE.
fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    if let Some(l) = info.location() {
        error::note_panic_location(format!("{}:{}:{}", l.file(), l.line(), l.column()));
    }
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        let at = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
        render::note(&format!("panic{at}: {}\n{backtrace}", error::panic_message(info.payload())));
    }
}

/// No arguments, and named `bootstrap` (the custom runtime's entry point;
/// outside Lambda, `chatmigrate lambda` then says what is missing) or with
/// `AWS_LAMBDA_RUNTIME_API` set (inside Lambda, e.g. a container image).
fn started_by_lambda(args: &[OsString]) -> bool {
    let bootstrap = || {
        args[0]
            .to_str()
            .and_then(|a| std::path::Path::new(a).file_name())
            .is_some_and(|n| n == "bootstrap")
    };
    let in_lambda = || std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some_and(|v| !v.is_empty());
    args.len() == 1 && (bootstrap() || in_lambda())
}

/// `--format json` (or `--format=json`) among the arguments, read without
/// clap because clap has just failed.
fn wants_json(args: &[OsString]) -> bool {
    args.iter().zip(args.iter().skip(1)).any(|(a, b)| a == "--format" && b == "json") || args.iter().any(|a| a == "--format=json")
}

/// A command line clap refuses (or `--help` / `--version`): clap's own text,
/// and with `--format json` the JSON error object on stdout; exit 2 (0 for
/// help and version).
fn usage(e: clap::Error, json: bool) -> i32 {
    let _ = e.print();
    if !e.use_stderr() {
        return 0;
    }
    if json {
        let text = e.render().to_string();
        let message = text.lines().next().unwrap_or("").trim_start_matches("error: ").to_string();
        let hint = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("tip: "))
            .map(str::to_string)
            .unwrap_or_else(|| "run `chatmigrate --help`, or `chatmigrate <command> --help`, for the usage".into());
        render::error_json(&mut Stdout::new(), &Error::Usage { message, hint });
    }
    2
}
