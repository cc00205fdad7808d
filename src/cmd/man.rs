//! `chatmigrate man [--dir DIR]`: the manual page chatmigrate(1), rendered
//! by clap_mangen from the same definitions as the help (`cli.rs`): printed,
//! or with `--dir` written there with one page per command
//! (`chatmigrate-up.1`, `chatmigrate-database-drop.1`, ...).

use std::io::Write;

use crate::cli::ManArgs;
use crate::error::{Error, Result};

pub fn run(args: &ManArgs, out: &mut dyn Write) -> Result<i32> {
    let cmd = crate::cli::command();
    let Some(dir) = &args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        out.write_all(&page)?;
        out.flush()?;
        return Ok(0);
    };
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    clap_mangen::generate_to(cmd, dir).map_err(io)?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chatmigrate") && n.ends_with(".1"))
        .collect();
    pages.sort();
    writeln!(out, "wrote {} page(s) to {}: {}", pages.len(), dir.display(), pages.join(", "))?;
    Ok(0)
}
