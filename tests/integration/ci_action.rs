//! The GitHub Action (action.yml) runs scripts/ci-action.sh: run here with
//! the inputs a workflow gives, against the real PostgreSQL.

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci-action.sh")
}

struct Step {
    code: i32,
    stdout: String,
    output: String,
    summary: String,
}

fn step(verb: &str, cwd: &Path, env: &[(&str, &str)]) -> Step {
    let tmp = tempfile::tempdir().unwrap();
    let (output, summary, path) = (tmp.path().join("output"), tmp.path().join("summary"), tmp.path().join("path"));
    let mut c = Command::new("bash");
    c.arg(script()).arg(verb).current_dir(cwd);
    for k in crate::support::cli::CLEARED_ENV {
        c.env_remove(k);
    }
    let out = c
        .env("CHATMIGRATE_BIN", env!("CARGO_BIN_EXE_chatmigrate"))
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_PATH", &path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Step {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        output: read(&output) + &read(&path),
        summary: read(&summary),
    }
}

#[test]
fn the_action_runs_chatmigrate_and_sets_its_outputs() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    let base = [
        ("DATABASE_URL", db.url.as_str()),
        ("CHATMIGRATE_MIGRATIONS", dir.path().to_str().unwrap()),
    ];

    let install = step("install", dir.path(), &base);
    assert_eq!(install.code, 0, "{}", install.stdout);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_chatmigrate"))
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(install.output.trim(), bin_dir);

    // status --exit-code with something pending: exit 1, the JSON as output.
    let mut env = base.to_vec();
    env.extend([("INPUT_COMMAND", "status --exit-code"), ("INPUT_FORMAT", "json")]);
    let s = step("run", dir.path(), &env);
    assert_eq!(s.code, 1, "{}", s.stdout);
    assert!(s.output.starts_with("exit-code=1\njson<<CHATMIGRATE_JSON_"), "{}", s.output);
    let json_line = s.output.lines().nth(2).unwrap();
    let v: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(v["summary"]["pending"], 1);
    assert!(
        s.summary
            .starts_with("### chatmigrate status --exit-code: found something (exit 1)"),
        "{}",
        s.summary
    );

    // up in text: exit 0.
    let mut env = base.to_vec();
    env.push(("INPUT_COMMAND", "up"));
    let s = step("run", dir.path(), &env);
    assert_eq!(s.code, 0, "{}", s.stdout);
    assert!(s.stdout.contains("applied V1 a ("), "{}", s.stdout);
    assert_eq!(s.output, "exit-code=0\n");
    assert_eq!(db.versions(), vec![1]);

    // An environment that does not exist: exit 2, the error on the log.
    let mut env = base.to_vec();
    env.extend([("INPUT_COMMAND", "status"), ("INPUT_ENV", "prod")]);
    let s = step("run", dir.path(), &env);
    assert_eq!(s.code, 2);
    assert!(
        s.stdout
            .contains("error: environment `prod` is not defined in chatmigrate.toml (not found)"),
        "{}",
        s.stdout
    );
    assert!(s.summary.starts_with("### chatmigrate status: failed (exit 2)"), "{}", s.summary);

    let mut env = base.to_vec();
    env.push(("INPUT_FORMAT", "yaml"));
    let s = step("run", dir.path(), &env);
    assert_eq!(s.code, 2);
    assert!(
        s.stdout.contains("error: format must be text, json, github or sarif, not yaml"),
        "{}",
        s.stdout
    );
}

#[test]
fn the_action_writes_sarif_to_a_file_and_github_annotations_to_the_log() {
    let dir = Dir::new();
    dir.write(
        "V1__users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);
",
    );
    dir.write(
        "V2__idx.sql",
        "CREATE INDEX users_email ON users (email);
",
    );
    let temp = tempfile::tempdir().unwrap();
    let runner_temp = temp.path().to_str().unwrap();
    let base = [("CHATMIGRATE_MIGRATIONS", "."), ("RUNNER_TEMP", runner_temp)];

    // sarif: the log to $RUNNER_TEMP/chatmigrate.sarif, its path as an output; exit 1 (a finding).
    let mut env = base.to_vec();
    env.extend([("INPUT_COMMAND", "lint"), ("INPUT_FORMAT", "sarif")]);
    let s = step("run", dir.path(), &env);
    assert_eq!(s.code, 1, "{}", s.stdout);
    let file = temp.path().join("chatmigrate.sarif");
    assert!(
        s.stdout.contains(&format!("SARIF log written to {} (1 result(s))", file.display())),
        "{}",
        s.stdout
    );
    assert!(!s.stdout.contains("\"$schema\""), "the log stays out of the job log: {}", s.stdout);
    assert_eq!(s.output, format!("exit-code=1\nsarif-file={}\n", file.display()));
    let log: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "require-concurrent-index-creation");
    assert_eq!(
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "V2__idx.sql"
    );
    assert!(s.summary.contains(&format!("SARIF log: `{}`", file.display())), "{}", s.summary);

    // github: annotations in the log, the summary without them.
    let mut env = base.to_vec();
    env.extend([("INPUT_COMMAND", "lint"), ("INPUT_FORMAT", "github")]);
    let s = step("run", dir.path(), &env);
    assert_eq!(s.code, 1, "{}", s.stdout);
    assert!(
        s.stdout
            .contains("::error file=V2__idx.sql,line=1,col=1,title=require-concurrent-index-creation::"),
        "{}",
        s.stdout
    );
    assert!(!s.summary.contains("::error"), "{}", s.summary);
    assert!(s.summary.contains("1 error in 2 files ("), "{}", s.summary);

    // sarif with another command: chatmigrate's usage error, exit 2, no file output.
    let mut env = base.to_vec();
    env.extend([("INPUT_COMMAND", "status"), ("INPUT_FORMAT", "sarif")]);
    std::fs::remove_file(&file).unwrap();
    let s = step("run", dir.path(), &env);
    assert_eq!(s.code, 2, "{}", s.stdout);
    assert!(
        s.stdout.contains("error: --format sarif is not available for `status`"),
        "{}",
        s.stdout
    );
    assert_eq!(s.output, "exit-code=2\n");
    assert!(!file.exists());
}

#[test]
fn every_input_of_action_yml_reaches_the_script() {
    let action = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let script = std::fs::read_to_string(script()).unwrap();
    let inputs: Vec<&str> = action
        .split("\ninputs:\n")
        .nth(1)
        .unwrap()
        .split("\noutputs:")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':'))
        .collect();
    assert_eq!(inputs, vec!["command", "env", "config", "working-directory", "format", "version"]);
    for input in inputs {
        assert!(
            action.contains(&format!("${{{{ inputs.{input} }}}}")),
            "action.yml does not use {input}"
        );
        if input != "working-directory" {
            let var = format!("INPUT_{}", input.to_uppercase());
            assert!(script.contains(&var), "scripts/ci-action.sh does not read {var}");
        }
    }
}
