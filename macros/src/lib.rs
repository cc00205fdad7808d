//! `embed_migrations!("db/migrations")`: an application's migrations
//! compiled into its binary, for `chatmigrate::Migrator::embedded`. Use it
//! through `chatmigrate::embed_migrations!`.
//!
//! The directory is relative to the calling crate's `Cargo.toml`
//! (`CARGO_MANIFEST_DIR`). It is read as chatmigrate reads a migration
//! directory: hidden files, `*.md` and subdirectories are skipped; every
//! other file must be named `V{version}__{name}.sql` (a version may be used
//! once), `R__{name}.sql` (a repeatable migration) or
//! `V{version}__{name}.undo.sql` (the undo of a migration of the set, for
//! `Migrator::down`). A file that breaks the rule is a compile error that names it
//! and says what is wrong, as `chatmigrate up` would say it at run time.
//!
//! Each file is embedded with `include_bytes!`, so editing one rebuilds the
//! crate; a file added or removed is seen when the crate is rebuilt (add
//! `println!("cargo:rerun-if-changed=db/migrations");` to a build script to
//! rebuild on that too). No dependencies: it builds in a second.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(ts) => ts,
        Err((span, message)) => compile_error(span, &message),
    }
}

fn expand(input: TokenStream) -> Result<TokenStream, (Span, String)> {
    let mut tokens = input.into_iter();
    let (dir, span) = match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Literal(l)), None) => (string_literal(&l).ok_or((l.span(), usage()))?, l.span()),
        (Some(t), _) => return Err((t.span(), usage())),
        (None, _) => return Err((Span::call_site(), usage())),
    };
    let root = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| (span, "CARGO_MANIFEST_DIR is not set: build with cargo".to_string()))?;
    let path = std::path::Path::new(&root).join(&dir);
    let entries = std::fs::read_dir(&path).map_err(|e| (span, format!("{}: cannot read the migration directory: {e}", path.display())))?;
    let mut files: Vec<(i64, String, std::path::PathBuf)> = Vec::new();
    // (the migration's file name, the undo file's name, its path)
    let mut undo_files: Vec<(String, String, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| (span, format!("{}: {e}", path.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err((span, format!("{dir}/{}: the file name is not UTF-8", name.to_string_lossy())));
        };
        let shown = format!("{}/{name}", dir.trim_end_matches('/'));
        if name.starts_with('.') || name.ends_with(".md") {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| (span, format!("{shown}: {e}")))?;
        let meta = std::fs::metadata(entry.path()).map_err(|e| (span, format!("{shown}: {e}")))?;
        if meta.is_dir() {
            if name.ends_with(".sql") {
                return Err((span, format!("{shown}: a directory, not a migration file")));
            }
            continue;
        }
        if !meta.is_file() || (!file_type.is_file() && !file_type.is_symlink()) {
            return Err((span, format!("{shown}: not a regular file")));
        }
        // Undo files (`chatmigrate down`'s): checked against the set below.
        if let Some(stem) = name.strip_suffix(".undo.sql").filter(|s| !s.is_empty()) {
            undo_files.push((format!("{stem}.sql"), name.to_string(), entry.path()));
            continue;
        }
        // A repeatable migration, R__{name}.sql (version 0).
        if let Some(r) = name
            .strip_prefix("R__")
            .and_then(|r| r.strip_suffix(".sql"))
            .filter(|r| !r.is_empty())
        {
            if !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((
                    span,
                    format!("{shown}: not a migration file name: the name may hold only letters, digits and underscores"),
                ));
            }
            files.push((0, name.to_string(), entry.path()));
            continue;
        }
        let version = check_file_name(name).map_err(|problem| {
            (
                span,
                format!(
                    "{shown}: not a migration file name{problem} (expected V{{version}}__{{name}}.sql, e.g. V20250101120000__create_users.sql)"
                ),
            )
        })?;
        if let Some((_, first, _)) = files.iter().find(|(v, _, _)| *v == version) {
            return Err((
                span,
                format!("version {version} is used twice: {}/{first} and {shown}", dir.trim_end_matches('/')),
            ));
        }
        files.push((version, name.to_string(), entry.path()));
    }
    files.sort();
    undo_files.sort();
    for (target, undo, _) in &undo_files {
        if target.starts_with("R__") {
            return Err((
                span,
                format!("{dir}/{undo}: a repeatable migration has no undo file (`chatmigrate down` reverts versioned migrations only)"),
            ));
        }
        if !files.iter().any(|(_, n, _)| n == target) {
            return Err((
                span,
                format!("{dir}/{undo}: an undo file without its migration: there is no {target}"),
            ));
        }
    }
    // chatmigrate::EmbeddedSet::__new(dir, &[(name, include_bytes!(path)), ...], &[undo files])
    let list = file_list(&files.iter().map(|(_, n, p)| (n.clone(), p.clone())).collect::<Vec<_>>(), span)?;
    let undo_list = file_list(&undo_files.iter().map(|(_, n, p)| (n.clone(), p.clone())).collect::<Vec<_>>(), span)?;
    let mut args = TokenStream::new();
    args.extend([
        TokenTree::Literal(Literal::string(dir.trim_end_matches('/'))),
        TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        TokenTree::Punct(Punct::new('&', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, list)),
        TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        TokenTree::Punct(Punct::new('&', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, undo_list)),
    ]);
    let mut out = TokenStream::new();
    out.extend(path_tokens(&["chatmigrate", "EmbeddedSet", "__new"], span));
    out.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, args))]);
    Ok(out)
}

/// `(name, include_bytes!(path)), ...`
fn file_list(files: &[(String, std::path::PathBuf)], span: Span) -> Result<TokenStream, (Span, String)> {
    let mut list = TokenStream::new();
    for (name, file) in files {
        let Some(file) = file.to_str() else {
            return Err((span, format!("{}: the path is not UTF-8", file.display())));
        };
        let include: TokenStream = [
            TokenTree::Ident(Ident::new("include_bytes", span)),
            TokenTree::Punct(Punct::new('!', Spacing::Alone)),
            TokenTree::Group(Group::new(Delimiter::Parenthesis, TokenTree::Literal(Literal::string(file)).into())),
        ]
        .into_iter()
        .collect();
        let mut pair = TokenStream::new();
        pair.extend([
            TokenTree::Literal(Literal::string(name)),
            TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        ]);
        pair.extend(include);
        list.extend([
            TokenTree::Group(Group::new(Delimiter::Parenthesis, pair)),
            TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        ]);
    }
    Ok(list)
}

fn usage() -> String {
    "embed_migrations! takes one string literal: the migration directory relative to Cargo.toml, e.g. embed_migrations!(\"db/migrations\")"
        .into()
}

/// `::a::b::c`
fn path_tokens(segments: &[&str], span: Span) -> TokenStream {
    let mut ts = TokenStream::new();
    for s in segments {
        ts.extend([
            TokenTree::Punct(Punct::new(':', Spacing::Joint)),
            TokenTree::Punct(Punct::new(':', Spacing::Alone)),
            TokenTree::Ident(Ident::new(s, span)),
        ]);
    }
    ts
}

fn compile_error(span: Span, message: &str) -> TokenStream {
    let mut ts = TokenStream::new();
    ts.extend(path_tokens(&["core", "compile_error"], span));
    ts.extend([
        TokenTree::Punct(Punct::new('!', Spacing::Alone)),
        TokenTree::Group(Group::new(
            Delimiter::Parenthesis,
            TokenTree::Literal(Literal::string(message)).into(),
        )),
    ]);
    ts.into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

/// The value of a plain or raw string literal.
fn string_literal(l: &Literal) -> Option<String> {
    let text = l.to_string();
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        if inner.contains('\\') {
            return None;
        }
        return Some(inner.to_string());
    }
    let raw = text.strip_prefix('r')?;
    let hashes = raw.len() - raw.trim_start_matches('#').len();
    let inner = raw[hashes..].strip_prefix('"')?;
    let inner = inner.strip_suffix(&"#".repeat(hashes))?.strip_suffix('"')?;
    Some(inner.to_string())
}

/// chatmigrate's file-name grammar (`migration::check_file_name`, whose
/// wording it repeats): the version, or what is wrong.
fn check_file_name(file_name: &str) -> Result<i64, &'static str> {
    let starts_like_one =
        file_name.len() > 1 && file_name.starts_with(['V', 'v']) && file_name[1..].starts_with(|c: char| c.is_ascii_digit());
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Err(if starts_like_one && file_name.contains("__") {
            ": migration files end in .sql"
        } else {
            ""
        });
    };
    let rest = match (stem.strip_prefix('V'), stem.strip_prefix('v')) {
        (Some(rest), _) => rest,
        (None, Some(_)) if starts_like_one => return Err(": the V must be upper-case"),
        _ => return Err(""),
    };
    let Some((digits, name)) = rest.split_once("__") else {
        let one = rest
            .split_once('_')
            .is_some_and(|(d, n)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty());
        return Err(if one {
            ": two underscores separate the version from the name"
        } else {
            ""
        });
    };
    if digits.is_empty() {
        return Err(": the version after the V is missing");
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(": the version must be digits only");
    }
    if name.is_empty() {
        return Err(": the name after the two underscores is empty");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(": the name may hold only letters, digits and underscores");
    }
    match digits.parse::<i64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(": the version must be from 1 to 9223372036854775807"),
    }
}
