//! What the command line says about itself: the help (one text per command
//! for `-h` and `--help`, exit codes in both, global options once under
//! their own heading, every default shown), the shell completions
//! (clap_complete) and the manual pages (clap_mangen), all from the same
//! definitions.

use crate::support::*;

/// Every command path: [], ["up"], ..., ["database", "drop"].
fn commands() -> Vec<Vec<String>> {
    fn walk(c: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for s in c.get_subcommands() {
            let mut p = path.clone();
            p.push(s.get_name().to_string());
            walk(s, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&chatmigrate::__private::cli::command(), Vec::new(), &mut out);
    out
}

const GLOBALS: [&str; 8] = [
    "--env <NAME>",
    "--database-url <URL>",
    "--migrations <DIR>",
    "--config <PATH>",
    "-v, --verbose",
    "-q, --quiet",
    "--color <COLOR>",
    "--format <FORMAT>",
];

#[test]
fn help_is_one_text_per_command_with_exit_codes_globals_apart_and_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let all = commands();
    assert!(all.len() >= 15, "{all:?}");
    for path in all.iter().filter(|p| p.first().map(String::as_str) != Some("help")) {
        let args = |flag: &'static str| {
            let mut a: Vec<&str> = path.iter().map(String::as_str).collect();
            a.push(flag);
            a
        };
        let short = run_in(tmp.path(), &args("-h"), &[]);
        let long = run_in(tmp.path(), &args("--help"), &[]);
        short.assert_ok();
        assert_eq!(short.stdout, long.stdout, "`{path:?} -h` and `--help` differ");
        let text = &short.stdout;
        assert!(!text.contains("see more with '--help'"), "{path:?}:\n{text}");
        assert!(text.contains("\nExit codes:\n  0  "), "{path:?} lists no exit codes:\n{text}");
        // Global options: under their own heading, after the command's own.
        let (own, globals) = text
            .split_once("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{path:?}:\n{text}"));
        for g in GLOBALS {
            assert!(!own.contains(g), "{path:?}: {g} among the command's own options:\n{text}");
            assert_eq!(globals.matches(g).count(), 1, "{path:?}: {g} once under Global options:\n{text}");
        }
    }
    // Every option that takes a value shows its default.
    fn check(c: &clap::Command, path: &str) {
        // One of a required group (baseline: --target or --from-refinery) has none.
        let required: Vec<&clap::Id> = c.get_groups().filter(|g| g.is_required_set()).flat_map(|g| g.get_args()).collect();
        for a in c.get_arguments() {
            let takes_value = a.get_action().takes_values() && !a.is_positional();
            let positional_optional = a.is_positional() && !a.is_required_set();
            if (takes_value || positional_optional) && !a.is_hide_set() && !required.contains(&a.get_id()) {
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    help.contains("[default: ") || !a.get_default_values().is_empty(),
                    "{path} {}: no default shown in {help:?}",
                    a.get_id()
                );
            }
        }
        for s in c.get_subcommands() {
            check(s, &format!("{path} {}", s.get_name()));
        }
    }
    check(&chatmigrate::__private::cli::command(), "chatmigrate");
    // The exit codes of `up` name the signals; of `status`, --exit-code.
    let up = run_in(tmp.path(), &["up", "-h"], &[]).stdout;
    assert!(up.contains("\n  130, 143  stopped by SIGINT (Ctrl-C) or SIGTERM"), "{up}");
    let status = run_in(tmp.path(), &["status", "-h"], &[]).stdout;
    assert!(status.contains("\n  1  with --exit-code: a migration is pending"), "{status}");
    // `baseline` names its version --target, as `up` does: --version is the program's.
    let b = run_in(tmp.path(), &["baseline", "-h"], &[]).stdout;
    assert!(b.contains("--target <VERSION>") && !b.contains("--version"), "{b}");
}

#[test]
fn completions_are_generated_for_each_shell_and_complete_in_bash() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _chatmigrate"),
        ("zsh", "#compdef chatmigrate"),
        ("fish", "complete -c chatmigrate"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[chatmigrate]"),
    ] {
        let r = run_in(tmp.path(), &["completions", shell], &[]);
        r.assert_ok();
        assert!(r.stdout.contains(marker), "{shell}: no {marker:?}");
        for cmd in ["status", "baseline", "wait", "database", "completions"] {
            assert!(r.stdout.contains(cmd), "{shell}: {cmd} not completed");
        }
    }
    let script = run_in(tmp.path(), &["completions", "bash"], &[]).stdout;
    std::fs::write(tmp.path().join("c.bash"), &script).unwrap();
    // The script, sourced in bash, completes commands, subcommands and options.
    let complete = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let words = words.join(" ");
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source ./c.bash; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _chatmigrate chatmigrate \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(complete(&["chatmigrate", "st"]), vec!["status"]);
    assert_eq!(complete(&["chatmigrate", "database", "d"]), vec!["drop"]);
    assert_eq!(complete(&["chatmigrate", "up", "--dr"]), vec!["--dry-run"]);
    assert_eq!(complete(&["chatmigrate", "--format", ""]), vec!["text", "json", "github", "sarif"]);
    assert!(complete(&["chatmigrate", "completions", ""]).contains(&"fish".to_string()));
    assert_eq!(run_in(tmp.path(), &["completions", "tcsh"], &[]).code, 2);
}

#[test]
fn the_man_page_is_generated_from_the_same_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_in(tmp.path(), &["man"], &[]);
    r.assert_ok();
    assert!(r.stdout.contains(".TH chatmigrate 1"));
    for text in [".SH \"GLOBAL OPTIONS\"", "wait", "database", "Exit codes:", "\\-\\-database\\-url"] {
        assert!(r.stdout.contains(text), "the man page lacks {text:?}");
    }
    let dir = tmp.path().join("man1");
    let r = run_in(tmp.path(), &["man", "--dir", dir.to_str().unwrap()], &[]);
    r.assert_ok();
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for p in [
        "chatmigrate.1",
        "chatmigrate-up.1",
        "chatmigrate-wait.1",
        "chatmigrate-database-drop.1",
        "chatmigrate-completions.1",
    ] {
        assert!(pages.contains(&p.to_string()), "{p} not in {pages:?}");
    }
    assert_eq!(
        r.stdout,
        format!("wrote {} page(s) to {}: {}\n", pages.len(), dir.display(), pages.join(", "))
    );
    let up = std::fs::read_to_string(dir.join("chatmigrate-up.1")).unwrap();
    assert!(up.contains("\\-\\-dry\\-run") && up.contains("\\-\\-lock\\-wait"), "{up}");
}
