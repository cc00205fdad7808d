//! Undo files: `V3__add_theme_index.undo.sql` beside
//! `V3__add_theme_index.sql` reverts it (`chatmigrate down`). An undo file
//! is read like a migration (directives, placeholders, splitting), under
//! its migration's version and name; one whose migration is not in the set
//! is an error naming it, whenever the set is loaded.
//!
//! Not Flyway's `U{n}__` prefix: in refinery's grammar, which chatmigrate
//! keeps, `U` is an unversioned migration (docs/migrations.md).

use std::path::Path;

pub use crate::embedded::{is_undo_file, UNDO_SUFFIX as SUFFIX};
use crate::error::{Error, Result};
use crate::migration::{self, ExtraSet, Migration, Source};

/// An undo file found in a set: its file name, where it is, its bytes
/// (read only when asked).
struct Found {
    file_name: String,
    path: String,
    bytes: Option<Vec<u8>>,
}

fn find(source: &Source, extra: &[ExtraSet], read: bool) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    match source {
        Source::Embedded => {
            for (name, bytes, prefix) in migration::embedded_undo_files(extra) {
                out.push(Found {
                    file_name: name.into(),
                    path: format!("{prefix}{name}"),
                    bytes: Some(bytes.to_vec()),
                });
            }
        }
        Source::Dirs(dirs) => {
            for dir in dirs {
                out.extend(find_dir(dir, read)?);
            }
        }
        Source::Compiled(sets) => {
            if sets.iter().any(|s| s.is_chat_schema()) {
                out.extend(find(&Source::Embedded, extra, read)?);
            }
            for set in sets.iter().filter(|s| !s.is_chat_schema()) {
                for (name, bytes) in set.undo_files() {
                    out.push(Found {
                        file_name: name.into(),
                        path: format!("embedded:{}/{name}", set.dir()),
                        bytes: Some(bytes.to_vec()),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn find_dir(dir: &Path, read: bool) -> Result<Vec<Found>> {
    let io = |e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !is_undo_file(&name) || name.starts_with('.') || entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let shown = path.display().to_string();
        let bytes = match read {
            true => Some(std::fs::read(&path).map_err(|e| Error::Io {
                path: shown.clone(),
                source: e,
            })?),
            false => None,
        };
        out.push(Found {
            file_name: name,
            path: shown,
            bytes,
        });
    }
    out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(out)
}

/// The migration file name an undo file belongs to.
fn migration_name(undo_file: &str) -> String {
    format!("{}.sql", undo_file.strip_suffix(SUFFIX).unwrap_or(undo_file))
}

/// Refuses an undo file whose migration is not in `set` (or that is not
/// named after one), naming it. Reads file names only.
pub fn check(source: &Source, extra: &[ExtraSet], set: &[Migration]) -> Result<()> {
    for f in find(source, extra, false)? {
        owner(&f, set)?;
    }
    Ok(())
}

fn owner<'a>(f: &Found, set: &'a [Migration]) -> Result<&'a Migration> {
    let target = migration_name(&f.file_name);
    let (version, name) = migration::check_file_name(&target, &f.path).map_err(|_| Error::Undo {
        at: f.path.clone(),
        message: "an undo file is named after its migration: V{version}__{name}.undo.sql".into(),
        hint: "rename it after the migration it reverts, e.g. V3__add_theme_index.undo.sql beside V3__add_theme_index.sql".into(),
    })?;
    if version == crate::history::REPEATABLE {
        return Err(Error::Undo {
            at: f.path.clone(),
            message: "a repeatable migration has no undo file: `down` reverts versioned migrations only".into(),
            hint: format!(
                "remove it; to take back what {target} made, change the R__ file (`up` applies it again) or drop the objects in a new versioned migration"
            ),
        });
    }
    set.iter()
        .find(|m| m.version == version && m.name == name)
        .ok_or_else(|| Error::Undo {
            at: f.path.clone(),
            message: match set.iter().find(|m| m.version == version) {
                Some(m) => format!("an undo file without its migration: version {version} is {}", m.path),
                None => format!("an undo file without its migration: there is no {target}"),
            },
            hint: format!("rename it to match its migration, or remove it (an undo file reverts {target})"),
        })
}

/// Every undo file of the set, read, as a migration of its migration's
/// version and name (its checksum is the undo file's), placeholders
/// substituted by `substitute` (`placeholders::Values::substitute`).
pub fn load(
    source: &Source,
    extra: &[ExtraSet],
    set: &[Migration],
    substitute: impl Fn(&mut Migration) -> Result<()>,
) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for f in find(source, extra, true)? {
        let m = owner(&f, set)?;
        let target = migration_name(&f.file_name);
        let mut u = Migration::parse(&target, &f.path, f.bytes.as_deref().unwrap_or_default())?;
        debug_assert_eq!((u.version, &u.name), (m.version, &m.name));
        substitute(&mut u)?;
        out.push(u);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_undo_file("V3__x.undo.sql"));
        assert!(!is_undo_file(".undo.sql") && !is_undo_file("V3__x.sql"));
        assert_eq!(migration_name("V3__add_theme_index.undo.sql"), "V3__add_theme_index.sql");
    }

    #[test]
    fn an_undo_file_without_its_migration_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("V1__a.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.path().join("V1__a.undo.sql"), "SELECT 2;").unwrap();
        let source = Source::Dirs(vec![dir.path().to_path_buf()]);
        let set = migration::load(&source, &[]).unwrap();
        check(&source, &[], &set).unwrap();
        std::fs::write(dir.path().join("V2__b.undo.sql"), "SELECT 2;").unwrap();
        let e = check(&source, &[], &set).unwrap_err();
        let shown = dir.path().join("V2__b.undo.sql").display().to_string();
        assert_eq!(
            e.to_string(),
            format!("{shown}: an undo file without its migration: there is no V2__b.sql")
        );
        std::fs::remove_file(dir.path().join("V2__b.undo.sql")).unwrap();
        std::fs::write(dir.path().join("V1__other.undo.sql"), "SELECT 2;").unwrap();
        let e = check(&source, &[], &set).unwrap_err().to_string();
        let want = format!(
            "an undo file without its migration: version 1 is {}",
            dir.path().join("V1__a.sql").display()
        );
        assert!(e.ends_with(&want), "{e}");
    }

    #[test]
    fn the_shipped_undo_files_belong_to_the_shipped_migrations() {
        for extra in [&[][..], crate::backend::citus::EXTRA_MIGRATIONS] {
            let set = migration::load(&Source::Embedded, extra).unwrap();
            check(&Source::Embedded, extra, &set).unwrap();
            let n = migration::embedded_undo_files(extra).len();
            assert_eq!(n, set.len(), "every shipped migration has its undo file");
        }
    }
}
