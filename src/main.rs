//! The `chatmigrate` binary: parse the command line, run, print an error and
//! its hint on stderr, exit 0 (ok), 1 (found something) or 2 (error).

use clap::Parser;

fn main() {
    let cli = chatmigrate::cli::Cli::parse();
    let style = chatmigrate::cmd::style(&cli);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match runtime.block_on(chatmigrate::cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            chatmigrate::report::error(&style, &e);
            e.exit_code()
        }
    };
    drop(runtime);
    std::process::exit(code);
}
