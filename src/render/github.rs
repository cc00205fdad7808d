//! `--format github`: the text output, plus GitHub Actions workflow
//! commands (`::error file=…,line=…,col=…,title=…::message`) that the
//! runner turns into annotations on the files: lint findings (`lint`,
//! `verify`, a lint refusal of `up`), drifted files (`verify`) and the
//! error a command ends with (at the failing statement's file, line and
//! column when it has one). Annotations go to stdout, the text's `error:`
//! lines stay on stderr.

use std::io::{self, Write};

use super::outcome::Outcome;
use super::{text, Style};
use crate::error::Error;
use crate::lint::Finding;

/// The text output, with the annotations of what it found.
pub(super) fn outcome(style: &Style, out: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    match o {
        Outcome::Lint(r) => {
            lint_annotations(out, &r.findings)?;
            writeln!(out, "{}", text::lint_summary(r))
        }
        Outcome::Verify(v) => {
            text::verify_drift(style, out, v)?;
            for e in &v.drift {
                let at = e.path.as_deref().map(|p| (p, 1, 0));
                annotation(out, "error", at, &format!("drift: {}", e.state.as_str()), &text::drift_line(e))?;
            }
            if let Some(r) = v.lint.as_ref().filter(|r| !r.findings.is_empty()) {
                writeln!(out)?;
                lint_annotations(out, &r.findings)?;
                writeln!(out, "{}", text::lint_summary(r))?;
            }
            Ok(())
        }
        o => text::outcome(style, out, o),
    }
}

/// An error as annotations: at its file, line and column when it has them;
/// a lint refusal as its findings.
pub(super) fn error(out: &mut dyn Write, e: &Error) -> io::Result<()> {
    if let Error::Lint(report) = e {
        return lint_annotations(out, &report.findings);
    }
    let text = e.to_string();
    let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
    let title = format!("chatmigrate: {}", e.kind());
    match e.location() {
        Some(l) => {
            let message = text.strip_prefix(&format!("{l}: ")).unwrap_or(&text);
            annotation(out, "error", Some((&l.path, l.line, l.col)), &title, &format!("{message}{hint}"))
        }
        None => annotation(out, "error", None, &title, &format!("{text}{hint}")),
    }
}

/// The findings as GitHub workflow commands, one line each:
/// `::error file=<path>,line=<line>,col=<col>,title=<rule>::<message>%0Ahelp: <help>`.
pub(super) fn lint_annotations(out: &mut dyn Write, findings: &[Finding]) -> io::Result<()> {
    for f in findings {
        let at = (f.location.path.as_str(), f.location.line, f.location.col);
        annotation(out, f.level.as_str(), Some(at), f.rule, &format!("{}\nhelp: {}", f.message, f.help))?;
    }
    Ok(())
}

/// One GitHub workflow command (`error`, `warning` or `notice`), escaped as
/// the runner reads it: in the message `%`, CR and LF; in the properties
/// also `:` and `,`.
pub(super) fn annotation(out: &mut dyn Write, level: &str, at: Option<(&str, usize, usize)>, title: &str, message: &str) -> io::Result<()> {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut props = Vec::new();
    if let Some((path, line, col)) = at {
        props.push(format!("file={}", property(&super::ci_path(path))));
        if line > 0 {
            props.push(format!("line={line}"));
            if col > 0 {
                props.push(format!("col={col}"));
            }
        }
    }
    props.push(format!("title={}", property(title)));
    writeln!(out, "::{level} {}::{}", props.join(","), data(message))
}
