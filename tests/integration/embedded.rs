//! An application's own migrations compiled in with
//! `chatmigrate::embed_migrations!`: this test crate is the example
//! application (no second build of the dependency graph), and a crate with
//! a bad file name is compiled with rustc to see the compile error.

use std::process::Command;

use chatmigrate::{EmbeddedSet, Migrator, CHAT_SCHEMA};

use crate::support::*;

static APP: EmbeddedSet = chatmigrate::embed_migrations!("tests/fixtures/embedded/app");
/// Versioned files with their undo files, and a repeatable migration.
static KINDS: EmbeddedSet = chatmigrate::embed_migrations!("tests/fixtures/embedded/kinds");

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn the_set_holds_the_files_sorted_and_skips_the_rest() {
    assert_eq!(APP.dir(), "tests/fixtures/embedded/app");
    let names: Vec<&str> = APP.files().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, vec!["V100__app_users.sql", "V101__app_users_email.sql"]);
    let disk = std::fs::read("tests/fixtures/embedded/app/V100__app_users.sql").unwrap();
    assert_eq!(APP.files()[0].1, &disk[..]);
    assert!(CHAT_SCHEMA.is_chat_schema());
    assert_eq!(CHAT_SCHEMA.files().len(), 4);
}

#[test]
fn migrator_runs_an_embedded_set_alone_or_with_the_chat_schema() {
    // Alone.
    let db = Db::new();
    let report = rt().block_on(Migrator::from_url(&db.url).unwrap().embedded([APP]).up()).unwrap();
    let applied: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
    assert_eq!(applied, vec![100, 101]);
    assert_eq!(db.versions(), vec![100, 101]);
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'app_users_email'::regclass"),
        "t"
    );
    // Exactly as the same files on disk: the CLI finds them applied, no drift.
    let r = run_in(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &["--database-url", &db.url, "--migrations", "tests/fixtures/embedded/app", "verify"],
        &[],
    );
    r.assert_ok();
    assert!(r.stdout.starts_with("verified 2 file(s) against "), "{r:#?}");

    // With the chat schema: one version space.
    let db = Db::new();
    let m = Migrator::from_url(&db.url).unwrap().embedded([CHAT_SCHEMA, APP]);
    let report = rt().block_on(m.up()).unwrap();
    let applied: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
    assert_eq!(applied, vec![1, 2, 3, 4, 100, 101]);
    let status = rt().block_on(m.status()).unwrap();
    assert!(status.iter().all(|e| e.state == chatmigrate::State::Applied));
    assert_eq!(status.len(), 6);
    // The path shown for an embedded file names its directory.
    assert_eq!(
        status[4].path.as_deref(),
        Some("embedded:tests/fixtures/embedded/app/V100__app_users.sql")
    );
    // Twice the same set: a version used twice, named.
    let e = rt()
        .block_on(Migrator::from_url(&db.url).unwrap().embedded([APP, APP]).up())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "version 100 is used twice: embedded:tests/fixtures/embedded/app/V100__app_users.sql and embedded:tests/fixtures/embedded/app/V100__app_users.sql"
    );
}

#[test]
fn an_embedded_set_carries_its_undo_files_and_repeatable_migrations() {
    let names: Vec<&str> = KINDS.files().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        vec!["R__kinds_tagged.sql", "V200__kinds_notes.sql", "V201__kinds_notes_tag.sql"]
    );
    let undo: Vec<&str> = KINDS.undo_files().iter().map(|(n, _)| *n).collect();
    assert_eq!(undo, vec!["V200__kinds_notes.undo.sql", "V201__kinds_notes_tag.undo.sql"]);
    assert_eq!(CHAT_SCHEMA.undo_files().len(), 4);

    let db = Db::new();
    let m = Migrator::from_url(&db.url).unwrap().embedded([KINDS]);
    let report = rt().block_on(m.up()).unwrap();
    let applied: Vec<(i64, &str)> = report.applied.iter().map(|a| (a.version, a.name.as_str())).collect();
    // The repeatable one last, after every versioned one.
    assert_eq!(applied, vec![(200, "kinds_notes"), (201, "kinds_notes_tag"), (0, "kinds_tagged")]);
    assert_eq!(db.scalar("SELECT count(*) FROM kinds_tagged"), "0");
    let status = rt().block_on(m.status()).unwrap();
    let last = status.last().unwrap();
    assert_eq!(
        (last.kind, last.state, last.name.as_str()),
        (chatmigrate::Kind::Repeatable, chatmigrate::State::Applied, "kinds_tagged")
    );

    // Migrator::down on the embedded set: its undo file ran (the view went
    // with it), and the repeatable migration is pending again.
    let undone = rt().block_on(m.down()).unwrap();
    assert_eq!(undone.undone.iter().map(|u| u.version).collect::<Vec<_>>(), vec![201]);
    assert_eq!(db.versions(), vec![200]);
    assert_eq!(db.scalar("SELECT to_regclass('kinds_tagged') IS NULL"), "t");
    let status = rt().block_on(m.status()).unwrap();
    assert_eq!(status.last().unwrap().state, chatmigrate::State::Pending);
    // Down to nothing, then up again: the same objects.
    rt().block_on(m.clone().target(0).down()).unwrap();
    assert_eq!(db.versions(), Vec::<i64>::new());
    let report = rt().block_on(m.up()).unwrap();
    assert_eq!(report.applied.len(), 3);
    assert_eq!(db.scalar("SELECT count(*) FROM kinds_tagged"), "0");
}

/// The proc-macro library cargo built for this test run.
fn macro_library() -> std::path::PathBuf {
    let deps = std::path::Path::new(env!("CARGO_BIN_EXE_chatmigrate"))
        .parent()
        .unwrap()
        .join("deps");
    let mut found: Vec<_> = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("libchatmigrate_macros-") && n.ends_with(".so")
        })
        .collect();
    found.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    found.pop().expect("libchatmigrate_macros-*.so in target/debug/deps")
}

/// Compiles a crate calling `embed_migrations!("db")` with `files` in `db/`;
/// returns rustc's stderr, or `None` when it compiled.
fn compile(files: &[&str]) -> Option<String> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("db")).unwrap();
    for f in files {
        std::fs::write(tmp.path().join("db").join(f), "SELECT 1;\n").unwrap();
    }
    std::fs::write(
        tmp.path().join("lib.rs"),
        "pub struct EmbeddedSet;\n\
         impl EmbeddedSet { pub const fn __new(_: &str, _: &[(&str, &[u8])], _: &[(&str, &[u8])]) -> EmbeddedSet { EmbeddedSet } }\n\
         // The macro names `::chatmigrate::EmbeddedSet`: this crate stands in for it.\n\
         extern crate self as chatmigrate;\n\
         pub static SET: chatmigrate::EmbeddedSet = chatmigrate_macros::embed_migrations!(\"db\");\n",
    )
    .unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "lib", "--crate-name", "app"])
        .arg("--extern")
        .arg(format!("chatmigrate_macros={}", macro_library().display()))
        .arg("--out-dir")
        .arg(tmp.path())
        .arg(tmp.path().join("lib.rs"))
        .env("CARGO_MANIFEST_DIR", tmp.path())
        .output()
        .unwrap();
    match out.status.success() {
        true => None,
        false => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn a_bad_file_name_is_a_compile_error_naming_the_file() {
    assert_eq!(compile(&["V1__users.sql", "V2__more.sql", "notes.md", ".hidden"]), None);
    let cases = [
        (
            "V1_users.sql",
            "db/V1_users.sql: not a migration file name: two underscores separate the version from the name",
        ),
        (
            "v1__users.sql",
            "db/v1__users.sql: not a migration file name: the V must be upper-case",
        ),
        (
            "V1__user-table.sql",
            "db/V1__user-table.sql: not a migration file name: the name may hold only letters, digits and underscores",
        ),
        (
            "V0__zero.sql",
            "db/V0__zero.sql: not a migration file name: the version must be from 1 to 9223372036854775807",
        ),
        (
            "notes.txt",
            "db/notes.txt: not a migration file name (expected V{version}__{name}.sql",
        ),
    ];
    for (file, expected) in cases {
        let stderr = compile(&["V1__users.sql", file]).unwrap_or_else(|| panic!("{file} compiled"));
        assert!(stderr.contains(&format!("error: {expected}")), "{file}:\n{stderr}");
    }
    // Undo files and repeatable migrations are part of a set; an undo file
    // needs its migration, and a repeatable one has none.
    assert_eq!(compile(&["V1__users.sql", "V1__users.undo.sql", "R__views.sql"]), None);
    for (files, expected) in [
        (
            &["V1__users.sql", "V2__more.undo.sql"][..],
            "db/V2__more.undo.sql: an undo file without its migration: there is no V2__more.sql",
        ),
        (
            &["V1__users.sql", "R__views.sql", "R__views.undo.sql"][..],
            "db/R__views.undo.sql: a repeatable migration has no undo file",
        ),
        (
            &["V1__users.sql", "R__my-views.sql"][..],
            "db/R__my-views.sql: not a migration file name: the name may hold only letters, digits and underscores",
        ),
    ] {
        let stderr = compile(files).unwrap_or_else(|| panic!("{files:?} compiled"));
        assert!(stderr.contains(&format!("error: {expected}")), "{files:?}:\n{stderr}");
    }
    let stderr = compile(&["V1__users.sql", "V01__again.sql"]).unwrap();
    assert!(stderr.contains("error: version 1 is used twice: db/"), "{stderr}");
}
