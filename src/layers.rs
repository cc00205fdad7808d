//! The layers of the crate, enforced (docs/architecture.md, "Layers").
//!
//! Every top-level module of `src/` has a layer. A module may use modules
//! of its own layer and of the layers below it, never one above, and no two
//! top-level modules may use each other, directly or through others (a
//! cycle). The test reads every `src/**/*.rs` for `crate::<module>` paths
//! (in `use` statements and inline) outside `#[cfg(test)]` code, and fails
//! naming the file and line of each upward use and each cycle.

/// The layer of each top-level module, lowest first.
pub(crate) const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "value",
            "location",
            "error",
            "findings",
            "capabilities",
            "sql",
            "embedded",
            "migration",
            "shipped_checksums",
            "undo",
            "history",
            "plan",
            "classify",
            "retry",
            "dialect",
            "settings",
        ],
    ),
    ("lint and backends", &["lint", "backend"]),
    ("config loading", &["config", "placeholders"]),
    ("running", &["vector_index", "schema", "runner", "database"]),
    ("rendering and the command line", &["render", "cli"]),
    ("commands", &["cmd"]),
    ("the crate's roots", &["lib", "main", "layers"]),
];

/// Layers whose modules may not use each other either: the linter and the
/// backends know only the core (the backend-neutral vocabulary), not each
/// other.
pub(crate) const APART: &[&str] = &["lint and backends"];

/// Uses that break the rule today, each with the reason; the test fails
/// when one is gone, so the list only shrinks.
pub(crate) const EXCEPTIONS: &[(&str, &str, &str)] = &[];

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::{APART, EXCEPTIONS, LAYERS};

    /// One use of another top-level module: where, and which.
    struct Use {
        from: String,
        to: String,
        at: String,
    }

    fn layer_of(module: &str) -> Option<usize> {
        LAYERS.iter().position(|(_, ms)| ms.contains(&module))
    }

    fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rs_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// A line without its string and char literals and its `//` comment.
    fn code_of(line: &str) -> String {
        let mut out = String::new();
        let mut chars = line.chars().peekable();
        let mut in_str = false;
        while let Some(c) = chars.next() {
            if in_str {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '/' if chars.peek() == Some(&'/') => break,
                // '{' and '}' as char literals.
                '\'' if matches!(chars.clone().nth(1), Some('\'')) => {
                    chars.next();
                    chars.next();
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// The modules a file names as `crate::<module>` or `crate::{a, b}`,
    /// with their lines, outside `#[cfg(test)]` items.
    fn uses_in(text: &str) -> Vec<(usize, String)> {
        let path = regex_lite_paths();
        let mut out = Vec::new();
        let mut skip_depth: Option<i64> = None;
        let mut cfg_test_next = false;
        for (i, raw) in text.lines().enumerate() {
            let code = code_of(raw);
            let trimmed = code.trim();
            if let Some(depth) = skip_depth.as_mut() {
                *depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
                if *depth <= 0 {
                    skip_depth = None;
                }
                continue;
            }
            if trimmed == "#[cfg(test)]" {
                cfg_test_next = true;
                continue;
            }
            if cfg_test_next {
                if trimmed.starts_with("#[") {
                    continue;
                }
                cfg_test_next = false;
                let depth = code.matches('{').count() as i64 - code.matches('}').count() as i64;
                if depth > 0 {
                    skip_depth = Some(depth);
                }
                continue;
            }
            for m in path(&code) {
                out.push((i + 1, m));
            }
        }
        out
    }

    /// `crate::x` and each name of `crate::{x, y::z}` in a line of code.
    fn regex_lite_paths() -> impl Fn(&str) -> Vec<String> {
        |code: &str| {
            let mut found = Vec::new();
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let before = rest[..i].chars().next_back();
                rest = &rest[i + "crate::".len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                    continue; // `$crate::` or `other_crate::`
                }
                if let Some(group) = rest.strip_prefix('{') {
                    let mut level = 1;
                    let end = group
                        .char_indices()
                        .find(|&(_, c)| {
                            level += match c {
                                '{' => 1,
                                '}' => -1,
                                _ => 0,
                            };
                            level == 0
                        })
                        .map_or(group.len(), |(i, _)| i);
                    let mut depth = 0;
                    let mut item = String::new();
                    for c in group[..end].chars().chain([',']) {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                                if !name.is_empty() {
                                    found.push(name);
                                }
                                item.clear();
                                continue;
                            }
                            _ => {}
                        }
                        item.push(c);
                    }
                } else {
                    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    found.push(name);
                }
            }
            found
        }
    }

    /// Files compiled only for tests: `#[cfg(test)] mod x;` in their parent.
    fn test_only_files(files: &[PathBuf], src: &Path) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for w in lines.windows(2) {
                if w[0] != "#[cfg(test)]" {
                    continue;
                }
                let Some(name) = w[1].strip_prefix("mod ").or_else(|| w[1].strip_prefix("pub(crate) mod ")) else {
                    continue;
                };
                let Some(name) = name.strip_suffix(';') else { continue };
                let dir = match f.file_name().unwrap().to_str().unwrap() {
                    "mod.rs" | "lib.rs" | "main.rs" => f.parent().unwrap().to_path_buf(),
                    other => f.parent().unwrap().join(other.trim_end_matches(".rs")),
                };
                out.insert(dir.join(format!("{name}.rs")));
                out.insert(dir.join(name).join("mod.rs"));
            }
        }
        let _ = src;
        out
    }

    fn all_uses() -> Vec<Use> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rs_files(&src, &mut files);
        files.sort();
        let test_only = test_only_files(&files, &src);
        let mut uses = Vec::new();
        for f in &files {
            if test_only.contains(f) {
                continue;
            }
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let from = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(f).unwrap();
            for (line, to) in uses_in(&text) {
                if to != from && !matches!(to.as_str(), "self" | "super") {
                    uses.push(Use {
                        from: from.clone(),
                        to,
                        at: format!("src/{rel}:{line}"),
                    });
                }
            }
        }
        uses
    }

    #[test]
    fn every_module_has_a_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        for e in std::fs::read_dir(&src).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            if (p.is_dir() || p.extension().is_some_and(|x| x == "rs")) && layer_of(&name).is_none() {
                missing.push(name);
            }
        }
        assert!(
            missing.is_empty(),
            "top-level modules without a layer in src/layers.rs: {missing:?}"
        );
    }

    #[test]
    fn no_module_uses_a_layer_above_its_own() {
        let mut wrong = Vec::new();
        for u in all_uses() {
            let (Some(from), Some(to)) = (layer_of(&u.from), layer_of(&u.to)) else {
                wrong.push(format!("{}: `crate::{}` is not a module with a layer", u.at, u.to));
                continue;
            };
            if EXCEPTIONS.iter().any(|(f, t, _)| *f == u.from && *t == u.to) {
                continue;
            }
            if to > from {
                wrong.push(format!(
                    "{}: `{}` ({}) uses `crate::{}` ({}), a layer above it",
                    u.at, u.from, LAYERS[from].0, u.to, LAYERS[to].0
                ));
            } else if to == from && APART.contains(&LAYERS[from].0) {
                wrong.push(format!(
                    "{}: `{}` uses `crate::{}`: the modules of `{}` use only the layers below them",
                    u.at, u.from, u.to, LAYERS[from].0
                ));
            }
        }
        assert!(wrong.is_empty(), "upward uses:\n{}", wrong.join("\n"));
    }

    #[test]
    fn no_cycle_between_top_level_modules() {
        let uses = all_uses();
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for u in &uses {
            if !EXCEPTIONS.iter().any(|(f, t, _)| *f == u.from && *t == u.to) {
                edges.entry(&u.from).or_default().insert(&u.to);
            }
        }
        // Which modules each module reaches.
        let reach = |start: &str| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![start.to_string()];
            while let Some(m) = todo.pop() {
                for &n in edges.get(m.as_str()).into_iter().flatten() {
                    if seen.insert(n.to_string()) {
                        todo.push(n.to_string());
                    }
                }
            }
            seen
        };
        let mut cycles = Vec::new();
        for u in uses
            .iter()
            .filter(|u| edges.get(u.from.as_str()).is_some_and(|e| e.contains(u.to.as_str())))
        {
            if reach(&u.to).contains(&u.from) {
                cycles.push(format!(
                    "{}: `{}` uses `crate::{}`, which uses `{}` back",
                    u.at, u.from, u.to, u.from
                ));
            }
        }
        assert!(cycles.is_empty(), "cycles between top-level modules:\n{}", cycles.join("\n"));
    }

    #[test]
    fn every_exception_is_still_needed() {
        let uses = all_uses();
        for (from, to, why) in EXCEPTIONS {
            assert!(
                uses.iter().any(|u| u.from == *from && u.to == *to),
                "`{from}` no longer uses `{to}`: remove the exception ({why}) from src/layers.rs"
            );
        }
    }

    #[test]
    fn the_reader_finds_paths_and_skips_test_code() {
        let text = "use crate::error::Error;\nuse crate::{sql::{self, Statement}, value};\nlet x = \"crate::render\"; // crate::cmd\n\
                    fn f() { crate::plan::plan() }\n#[cfg(test)]\nmod tests {\n    use crate::render;\n}\n$crate::x\n";
        let found: Vec<_> = uses_in(text);
        assert_eq!(
            found,
            vec![
                (1, "error".to_string()),
                (2, "sql".to_string()),
                (2, "value".to_string()),
                (4, "plan".to_string())
            ]
        );
    }
}
