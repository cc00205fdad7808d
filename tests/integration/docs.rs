//! The documentation runs: every console example of README.md and docs/*.md
//! is run as written, in one shell per document, and what it prints is
//! compared with what the document shows (tests/support/doc.rs: times,
//! checksums, timestamp versions masked; the test's database name and port
//! shown as the documentation's). A ```` ```console ```` block starts with
//! a `$ ` command; output without one is a ```` ```text ```` block.

use std::path::Path;
use std::time::Duration;

use crate::support::dataapi::{DataApiServer, Fault, FaultKind, Options};
use crate::support::doc::{console_blocks, run_blocks, Checkout, Masks, Shell};
use crate::support::*;

/// README.md, top to bottom, in a copy of the checkout whose dev database is
/// one of the test's: first the state `setup.sh` leaves (the chat schema
/// applied), then the tour and the other examples as a reader types them.
/// The tour starts from the state its own commands make and ends with the
/// dev database clean: everything applied, no drift, no `db/` left.
#[test]
fn readme_examples_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let blocks = console_blocks(&root.join("README.md"), "README.md");
    assert!(blocks.len() >= 10, "README.md has {} console blocks", blocks.len());

    let name = Db::fresh_name();
    let db = Db::adopt(&name);
    let checkout = Checkout::new(|toml| toml.replace("st_chat_db", &name));
    // What `setup.sh` leaves: the dev database with the chat schema.
    let password = server_password();
    let env = [("PGPORT", port()), ("CHATMIGRATE_DEV_PASSWORD", password.clone())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_in(checkout.path(), &["up", "--create-database"], &env).assert_ok();

    let masks = Masks::new().show_as(&name, "st_chat_db").show_as(&port(), "54329");
    let mut shell = Shell::start(checkout.path(), None, &[]);
    run_blocks(&mut shell, &blocks, &masks, &password, &mut |_, _| {});
    drop(shell);

    // Clean: the chat schema applied, nothing drifted, nothing left behind.
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);
    run_in(checkout.path(), &["status", "--exit-code"], &env).assert_ok();
    assert!(!checkout.path().join("db").exists(), "the tour removes db/");
}

/// docs/aurora.md: `up` riding out a resume, `up` giving up when the
/// cluster does not resume within `resume_timeout`, and `wait`, through the
/// Data API test server (the cluster `chat` of its ARN), which answers
/// DatabaseResumingException as long as the example needs.
#[test]
fn aurora_examples_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let blocks = console_blocks(&root.join("docs/aurora.md"), "docs/aurora.md");
    assert_eq!(blocks.len(), 3, "docs/aurora.md's console blocks changed: {blocks:#?}");
    let db = Db::new();
    let api = DataApiServer::start(&server_url(), Options::default());
    let dir = tempfile::tempdir().unwrap();
    let config = |extra: &str| {
        let text = format!("[environments.aurora]\n{}{extra}", api.environment(&db.name));
        std::fs::write(dir.path().join("chatmigrate.toml"), text).unwrap();
    };
    config("");
    let bin = Path::new(env!("CARGO_BIN_EXE_chatmigrate")).parent().unwrap().to_path_buf();
    let mut shell = Shell::start(dir.path(), Some(&bin), &AWS_ENV);
    let masks = Masks::new().show_as(&db.name, "st_chat_db");
    let resume = |secs: f64| Fault::new(FaultKind::Resuming).for_duration(Duration::from_secs_f64(secs));
    run_blocks(&mut shell, &blocks, &masks, &server_password(), &mut |i, b| match i {
        // Resumes after 4 s: progress lines, then the migrations.
        0 => api.fault(resume(4.0)),
        // Does not resume within resume_timeout (2 s here, 120 s shown).
        1 => {
            api.clear_faults();
            config("resume_timeout = \"2s\"\n");
            api.fault(Fault::new(FaultKind::Resuming).always());
        }
        2 => {
            api.clear_faults();
            config("");
            api.fault(resume(2.5));
        }
        _ => panic!("{}: no set-up for this block", b.at),
    });
    assert_eq!(db.versions(), vec![1, 2, 3, 4], "the first example applied the chat schema");
}

/// The harness itself: a documented output that differs is reported with
/// both texts; `…` lines and inline `…` match what they should only.
#[test]
fn the_doc_harness_reports_a_drifted_example() {
    use crate::support::doc::matches;
    let l = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches(&l(&["a", "…", "d"]), &l(&["a", "b", "c", "d"])));
    assert!(matches(&l(&["a", "…", "d"]), &l(&["a", "d"])));
    assert!(!matches(&l(&["a", "…", "d"]), &l(&["a", "b"])));
    assert!(matches(&l(&["x (…) y"]), &l(&["x (12 ms) y"])));
    assert!(!matches(&l(&["x (…) y"]), &l(&["x (12 ms) z"])));
    assert!(!matches(&l(&["a"]), &l(&["a", "b"])));
    let masks = Masks::new().show_as("cmt_1_2_3", "st_chat_db").show_as("54440", "54329");
    assert_eq!(
        masks.actual("applied V1 x (12 ms) on postgres@127.0.0.1:54440/cmt_1_2_3 at 2026-01-02T03:04:05Z\n\n"),
        vec!["applied V1 x (<duration>) on postgres@127.0.0.1:54329/st_chat_db at <time>"]
    );

    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("x.md");
    std::fs::write(
        &md,
        "text\n\n```console\n$ echo one; echo two >&2\none\ntwo\n$ printf 'a\\nb\\n'\na\nc\n```\n\n```sh\nnot run\n```\n",
    )
    .unwrap();
    let blocks = console_blocks(&md, "x.md");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].examples.len(), 2);
    assert_eq!(blocks[0].examples[1].at, "x.md:7");
    let mut shell = Shell::start(dir.path(), None, &[]);
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_blocks(&mut shell, &blocks, &Masks::new(), "no-secret-here", &mut |_, _| {})
    }));
    let message = *failed.expect_err("the second example differs").downcast::<String>().unwrap();
    assert!(message.starts_with("1 example(s) differ:"), "{message}");
    assert!(
        message.contains("x.md:7: $ printf 'a\\nb\\n'\n--- documented (masked)\na\nc\n--- printed (masked), exit 0\na\nb\n"),
        "{message}"
    );
}

/// Every console block runs: the documents that have any are the ones run
/// above. An example from a setup the suite cannot make (a remote host, a
/// Citus cluster on Azure) is a text block, not a console block.
#[test]
fn only_documents_that_run_have_console_blocks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut with_console = Vec::new();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.push(root.join("README.md"));
    files.sort();
    for f in files {
        let shown = f.strip_prefix(root).unwrap().display().to_string();
        if !console_blocks(&f, &shown).is_empty() {
            with_console.push(shown);
        }
    }
    assert_eq!(with_console, vec!["README.md", "docs/aurora.md"]);
}
