//! Migration sets compiled into a binary: the built-in chat schema
//! ([`CHAT_SCHEMA`]) and an application's own, made by
//! [`embed_migrations!`](crate::embed_migrations) from a directory of
//! `V{version}__{name}.sql` files, with their `R__{name}.sql` repeatable
//! migrations and `.undo.sql` undo files (names checked at compile time). A
//! [`Migrator`](crate::Migrator) runs one or several of them
//! (`Migrator::embedded`) exactly as it runs files from disk: the versions
//! of all the sets share one version space.

/// A set of migration files compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedSet {
    dir: &'static str,
    files: &'static [(&'static str, &'static [u8])],
    undo_files: &'static [(&'static str, &'static [u8])],
    chat_schema: bool,
}

/// The chat-history schema chatmigrate ships (on a Citus backend, with its
/// citus-only migrations): what `chatmigrate up` runs with no directory.
pub const CHAT_SCHEMA: EmbeddedSet = EmbeddedSet {
    dir: "",
    files: &[],
    undo_files: &[],
    chat_schema: true,
};

impl EmbeddedSet {
    /// What `embed_migrations!` expands to; not for direct use.
    #[doc(hidden)]
    pub const fn __new(
        dir: &'static str,
        files: &'static [(&'static str, &'static [u8])],
        undo_files: &'static [(&'static str, &'static [u8])],
    ) -> EmbeddedSet {
        EmbeddedSet {
            dir,
            files,
            undo_files,
            chat_schema: false,
        }
    }

    /// The directory the files came from, as written in the macro
    /// (`"db/migrations"`); empty for [`CHAT_SCHEMA`].
    pub fn dir(&self) -> &'static str {
        self.dir
    }

    /// Its files as (file name, contents), sorted by version; for
    /// [`CHAT_SCHEMA`], its portable files.
    pub fn files(&self) -> Vec<(&'static str, &'static [u8])> {
        match self.chat_schema {
            true => embedded_files(),
            false => self.files.to_vec(),
        }
    }

    /// Its undo files (`V{version}__{name}.undo.sql`, for `down`) as (file
    /// name, contents), sorted; for [`CHAT_SCHEMA`], its portable ones.
    pub fn undo_files(&self) -> Vec<(&'static str, &'static [u8])> {
        match self.chat_schema {
            true => embedded_undo_files(),
            false => self.undo_files.to_vec(),
        }
    }

    /// Whether this is the built-in chat schema.
    pub fn is_chat_schema(&self) -> bool {
        self.chat_schema
    }
}

static EMBEDDED: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// The suffix of an undo file (`V3__add_theme_index.undo.sql` reverts
/// `V3__add_theme_index.sql`; `undo.rs`): not a migration of the set.
pub const UNDO_SUFFIX: &str = ".undo.sql";

/// Whether `file_name` is an undo file's.
pub fn is_undo_file(file_name: &str) -> bool {
    file_name.ends_with(UNDO_SUFFIX) && file_name.len() > UNDO_SUFFIX.len()
}

/// The `.sql` files of a directory compiled in with `include_dir!` that
/// are migrations (not undo files), as (file name, bytes), sorted.
pub fn dir_files(dir: &'static include_dir::Dir<'static>) -> Vec<(&'static str, &'static [u8])> {
    sql_files(dir, false)
}

/// The undo files (`*.undo.sql`) of a directory compiled in with
/// `include_dir!`, as (file name, bytes), sorted.
pub fn dir_undo_files(dir: &'static include_dir::Dir<'static>) -> Vec<(&'static str, &'static [u8])> {
    sql_files(dir, true)
}

fn sql_files(dir: &'static include_dir::Dir<'static>, undo: bool) -> Vec<(&'static str, &'static [u8])> {
    let mut files: Vec<_> = dir
        .files()
        .filter_map(|f| Some((f.path().file_name()?.to_str()?, f.contents())))
        .filter(|(n, _)| n.ends_with(".sql") && is_undo_file(n) == undo)
        .collect();
    files.sort();
    files
}

/// The embedded portable set's files as (file name, bytes).
pub fn embedded_files() -> Vec<(&'static str, &'static [u8])> {
    dir_files(&EMBEDDED)
}

/// The embedded portable set's undo files as (file name, bytes).
pub fn embedded_undo_files() -> Vec<(&'static str, &'static [u8])> {
    dir_undo_files(&EMBEDDED)
}
