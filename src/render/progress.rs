//! `up`'s events as a command shows them, with a long index build's
//! progress ([`Event::IndexProgress`]) in the form the output allows: on a
//! terminal one updating line (an `indicatif` bar on stderr, cleared when
//! the build ends); not on a terminal, or with NO_COLOR, a plain line on
//! the events' stream at most every 10 s; with `--format json`, one JSON
//! object per reading on stderr (stdout keeps its one document); nothing
//! with `-q`.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Format, Style};
use crate::runner::{BuildProgress, Event};

/// How often a plain progress line is written at most.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Renders `up`'s events, keeping the state a progress line needs.
pub struct EventView {
    style: Style,
    /// Draw an updating line (a terminal, colours on).
    live: bool,
    bar: Option<ProgressBar>,
    /// When the last plain progress line was written (none yet: `None`).
    plain_at: Option<Instant>,
}

impl EventView {
    /// A view for `style`; the live line only when stderr is a terminal and
    /// colours are on (NO_COLOR or `--color never`: plain lines).
    pub fn new(style: &Style) -> EventView {
        EventView {
            style: *style,
            live: style.color && io::stderr().is_terminal(),
            bar: None,
            plain_at: None,
        }
    }

    /// Renders one event to `out` (progress as its form allows).
    pub fn event(&mut self, out: &mut dyn Write, ev: &Event) -> io::Result<()> {
        match ev {
            Event::IndexProgress(p) => self.progress(out, p),
            other => match &self.bar {
                // A line printed while the progress line shows goes above it.
                Some(bar) => bar.suspend(|| super::event(&self.style, out, other)),
                None => super::event(&self.style, out, other),
            },
        }
    }

    fn progress(&mut self, out: &mut dyn Write, p: &BuildProgress) -> io::Result<()> {
        if self.style.quiet {
            return Ok(());
        }
        match self.style.format {
            Format::Json => json_line(&mut io::stderr().lock(), p),
            Format::Sarif => Ok(()),
            Format::Text | Format::Github if self.live => {
                if p.ended {
                    if let Some(bar) = self.bar.take() {
                        bar.finish_and_clear();
                    }
                    return Ok(());
                }
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                    if let Ok(s) = ProgressStyle::with_template("{spinner} {wide_msg}") {
                        bar.set_style(s);
                    }
                    bar
                });
                bar.set_message(p.to_string());
                bar.tick();
                Ok(())
            }
            Format::Text | Format::Github => {
                if p.ended {
                    // Close what the lines said, if any was written.
                    if self.plain_at.take().is_some() {
                        writeln!(out, "{p}")?;
                    }
                    return Ok(());
                }
                if self.plain_at.is_some_and(|at| at.elapsed() < PLAIN_EVERY) {
                    return Ok(());
                }
                self.plain_at = Some(Instant::now());
                writeln!(out, "{p}")?;
                out.flush()
            }
        }
    }
}

impl Drop for EventView {
    /// A build left running (the deadline) or a run that failed mid-build
    /// leaves no half-drawn line behind.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// One reading as a JSON line: `{"event":"index_progress", ...}`
/// (docs/vector-indexes.md lists its keys).
pub(super) fn json_line(out: &mut dyn Write, p: &BuildProgress) -> io::Result<()> {
    let mut v = serde_json::to_value(p).map_err(io::Error::other)?;
    v["event"] = serde_json::Value::from("index_progress");
    writeln!(out, "{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(done: u64, ended: bool) -> BuildProgress {
        BuildProgress {
            version: 4,
            statement: 1,
            pid: 9,
            command: "CREATE INDEX".into(),
            index: Some("i".into()),
            table: Some("t".into()),
            phase: "building index: loading tuples".into(),
            unit: Some("blocks"),
            done,
            total: 100,
            waiting_for: None,
            elapsed_s: 3,
            eta_s: None,
            ended,
            nodes: Vec::new(),
        }
    }

    #[test]
    fn plain_lines_come_at_most_every_ten_seconds_and_quiet_shows_none() {
        let mut view = EventView::new(&Style::text());
        let mut out = Vec::new();
        for k in 0..5 {
            view.event(&mut out, &Event::IndexProgress(Box::new(reading(k * 10, false))))
                .unwrap();
        }
        view.event(&mut out, &Event::IndexProgress(Box::new(reading(50, true)))).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "V4 statement 1: CREATE INDEX i on t: building index: loading tuples: 0 of 100 blocks (0%), 3 s elapsed\nV4 statement 1: CREATE INDEX i on t: ended after 3 s\n"
        );
        let mut quiet = EventView::new(&Style {
            quiet: true,
            ..Style::text()
        });
        let mut out = Vec::new();
        quiet.event(&mut out, &Event::IndexProgress(Box::new(reading(1, false)))).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn a_json_reading_is_one_object_with_its_event_name() {
        let mut out = Vec::new();
        json_line(&mut out, &reading(7, false)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["event"], "index_progress");
        assert_eq!(
            (v["done"].as_u64(), v["total"].as_u64(), v["unit"].as_str()),
            (Some(7), Some(100), Some("blocks"))
        );
        assert!(v["waiting_for"].is_null() && v["eta_s"].is_null());
    }
}
