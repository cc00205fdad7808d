//! `lint --format sarif` and `lint --format github`, pinned byte for byte
//! to tests/fixtures/lint-formats/ (where the formats are specified), and
//! checked against what `lint --format json` finds in the same files and
//! against the SARIF 2.1.0 schema's constraints on what chatmigrate writes.
//! `--format github` on the other commands: drift and errors as
//! annotations.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint-formats")
}

/// The fixture file with `{VERSION}` replaced.
fn expected(name: &str) -> String {
    std::fs::read_to_string(fixture().join(name))
        .unwrap()
        .replace("{VERSION}", env!("CARGO_PKG_VERSION"))
}

fn lint_in_fixture(format: &str, env: &[(&str, &str)]) -> Run {
    let r = run_in(&fixture(), &["--migrations", "migrations", "--format", format, "lint"], env);
    assert_eq!(r.code, 1, "{r:#?}");
    r
}

fn lint_json() -> Value {
    serde_json::from_str(lint_in_fixture("json", &[]).stdout.trim()).unwrap()
}

#[test]
fn sarif_output_is_pinned() {
    let r = lint_in_fixture("sarif", &[]);
    assert_eq!(r.stdout, expected("expected.sarif.json"));
    assert_eq!(r.stderr, "");
}

#[test]
fn github_output_is_pinned() {
    let r = lint_in_fixture("github", &[]);
    assert_eq!(r.stdout, expected("expected.github.txt"));
    assert_eq!(r.stderr, "");
}

#[test]
fn the_sarif_fixture_holds_what_lint_finds() {
    let found = lint_json();
    let findings = found["findings"].as_array().unwrap();
    let mut rules: Vec<Value> = Vec::new();
    let mut results = Vec::new();
    for f in findings {
        let id = f["rule"].as_str().unwrap();
        let index = match rules.iter().position(|r| r["id"] == id) {
            Some(i) => i,
            None => {
                let rule = chatmigrate::__private::lint::RULES.iter().find(|r| r.id == id).unwrap();
                rules.push(json!({
                    "id": id,
                    "shortDescription": {"text": rule.summary},
                    "helpUri": format!("https://docs.rs/crate/chatmigrate/{}/source/docs/rules/{id}.md", env!("CARGO_PKG_VERSION")),
                    "defaultConfiguration": {"level": f["level"]},
                }));
                rules.len() - 1
            }
        };
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/rules/{id}.md")).exists());
        results.push(json!({
            "ruleId": id,
            "ruleIndex": index,
            "level": f["level"],
            "message": {"text": format!("{}\n\nhelp: {}", f["message"].as_str().unwrap(), f["help"].as_str().unwrap())},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f["path"], "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": f["line"], "startColumn": f["column"], "snippet": {"text": f["excerpt"]}},
            }}],
        }));
    }
    let derived = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "chatmigrate",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": format!("https://docs.rs/crate/chatmigrate/{}/source/docs/lint.md", env!("CARGO_PKG_VERSION")),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let pinned: Value = serde_json::from_str(&expected("expected.sarif.json")).unwrap();
    assert_eq!(pinned, derived);
    assert_eq!(pinned["runs"][0]["results"].as_array().unwrap().len(), 3);
}

/// The constraints of the SARIF 2.1.0 schema (OASIS, errata01) on the
/// properties chatmigrate writes: required properties, enums, minimums,
/// and no property the schema does not define (`additionalProperties:
/// false` on every object).
fn check_sarif(log: &Value) {
    fn only(v: &Value, allowed: &[&str], what: &str) {
        for k in v.as_object().unwrap_or_else(|| panic!("{what} is not an object: {v}")).keys() {
            assert!(allowed.contains(&k.as_str()), "{what}: property `{k}` is not in the schema");
        }
    }
    only(log, &["$schema", "version", "runs"], "sarifLog");
    assert_eq!(log["version"], "2.1.0");
    for run in log["runs"].as_array().unwrap() {
        only(run, &["tool", "results"], "run");
        only(&run["tool"], &["driver"], "tool");
        let driver = &run["tool"]["driver"];
        only(driver, &["name", "version", "informationUri", "rules"], "toolComponent");
        assert!(driver["name"].as_str().is_some_and(|n| !n.is_empty()));
        let rules = driver["rules"].as_array().unwrap();
        for rule in rules {
            only(
                rule,
                &["id", "shortDescription", "helpUri", "defaultConfiguration"],
                "reportingDescriptor",
            );
            assert!(rule["id"].is_string());
            only(&rule["shortDescription"], &["text"], "multiformatMessageString");
            assert!(rule["shortDescription"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{rule}");
            assert!(rule["helpUri"].as_str().unwrap().starts_with("https://"));
            only(&rule["defaultConfiguration"], &["level"], "reportingConfiguration");
            assert!(["none", "note", "warning", "error"].contains(&rule["defaultConfiguration"]["level"].as_str().unwrap()));
        }
        for result in run["results"].as_array().unwrap() {
            only(result, &["ruleId", "ruleIndex", "level", "message", "locations"], "result");
            let index = result["ruleIndex"].as_i64().unwrap();
            assert!(index >= 0 && (index as usize) < rules.len());
            assert_eq!(rules[index as usize]["id"], result["ruleId"]);
            assert!(["none", "note", "warning", "error"].contains(&result["level"].as_str().unwrap()));
            only(&result["message"], &["text"], "message");
            assert!(result["message"]["text"].is_string());
            for loc in result["locations"].as_array().unwrap() {
                only(loc, &["physicalLocation"], "location");
                only(&loc["physicalLocation"], &["artifactLocation", "region"], "physicalLocation");
                let artifact = &loc["physicalLocation"]["artifactLocation"];
                only(artifact, &["uri", "uriBaseId"], "artifactLocation");
                let uri = artifact["uri"].as_str().unwrap();
                assert!(
                    uri.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%:".contains(&b)),
                    "not a URI reference: {uri}"
                );
                let region = &loc["physicalLocation"]["region"];
                only(region, &["startLine", "startColumn", "snippet"], "region");
                assert!(region["startLine"].as_i64().unwrap() >= 1);
                assert!(region["startColumn"].as_i64().unwrap() >= 1);
                only(&region["snippet"], &["text"], "artifactContent");
            }
        }
    }
}

#[test]
fn sarif_meets_the_schema_for_many_findings_and_odd_paths() {
    check_sarif(&serde_json::from_str(&expected("expected.sarif.json")).unwrap());
    // Hundreds of files in a directory with a space and non-ASCII in its
    // name: every finding, every URI percent-encoded.
    let dir = Dir::new();
    let sub = dir.path().join("db migrations é");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("V1__users.sql"),
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    )
    .unwrap();
    for v in 2..=400 {
        std::fs::write(
            sub.join(format!("V{v}__idx_{v}.sql")),
            format!("CREATE INDEX users_{v} ON users (email);\n"),
        )
        .unwrap();
    }
    let r = run_in(dir.path(), &["--migrations", "db migrations é", "--format", "sarif", "lint"], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let log: Value = serde_json::from_str(&r.stdout).unwrap();
    check_sarif(&log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 399);
    assert_eq!(log["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap().len(), 1);
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "db%20migrations%20%C3%A9/V2__idx_2.sql"
    );
    // Under GITHUB_WORKSPACE: relative to the repository's root.
    let r = run_in(
        &fixture(),
        &["--migrations", "migrations", "--format", "sarif", "lint"],
        &[("GITHUB_WORKSPACE", env!("CARGO_MANIFEST_DIR"))],
    );
    let log: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "tests/fixtures/lint-formats/migrations/V2__email_index.sql"
    );
    // An absolute directory outside it: a file:// URI.
    let abs = sub.to_str().unwrap();
    let r = run_in(
        dir.path(),
        &["--migrations", abs, "--format", "sarif", "lint"],
        &[("GITHUB_WORKSPACE", env!("CARGO_MANIFEST_DIR"))],
    );
    let log: Value = serde_json::from_str(&r.stdout).unwrap();
    check_sarif(&log);
    let artifact = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert!(artifact["uri"].as_str().unwrap().starts_with("file:///"), "{artifact}");
    assert!(
        artifact["uri"]
            .as_str()
            .unwrap()
            .ends_with("/db%20migrations%20%C3%A9/V2__idx_2.sql"),
        "{artifact}"
    );
    assert_eq!(artifact.get("uriBaseId"), None);
    // No findings: an empty result list, exit 0.
    let clean = Dir::new();
    clean.write("V1__users.sql", "CREATE TABLE users (id bigint PRIMARY KEY);\n");
    let r = run_in(clean.path(), &["--migrations", ".", "--format", "sarif", "lint"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log: Value = serde_json::from_str(&r.stdout).unwrap();
    check_sarif(&log);
    assert_eq!(log["runs"][0]["results"], json!([]));
}

#[test]
fn the_github_fixture_holds_what_lint_finds() {
    let found = lint_json();
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut lines: Vec<String> = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "::{} file={},line={},col={},title={}::{}",
                f["level"].as_str().unwrap(),
                prop(f["path"].as_str().unwrap()),
                f["line"],
                f["column"],
                prop(f["rule"].as_str().unwrap()),
                data(&format!(
                    "{}\nhelp: {}",
                    f["message"].as_str().unwrap(),
                    f["help"].as_str().unwrap()
                ))
            )
        })
        .collect();
    let text = run_in(&fixture(), &["--migrations", "migrations", "lint"], &[]);
    lines.push(text.stdout.lines().last().unwrap().to_string());
    assert_eq!(expected("expected.github.txt"), lines.join("\n") + "\n");
}

#[test]
fn github_annotations_escape_what_the_runner_reads() {
    // A path with `,` and `:` (properties) and a message with `%`.
    let dir = Dir::new();
    let sub = dir.path().join("a,b:c");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("V1__users.sql"),
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    )
    .unwrap();
    std::fs::write(
        sub.join("V2__pct.sql"),
        "-- 100% sure\nCREATE INDEX users_email ON users (email);\n",
    )
    .unwrap();
    let r = run_in(dir.path(), &["--migrations", "a,b:c", "--format", "github", "lint"], &[]);
    assert_eq!(r.code, 1);
    let line = r.stdout.lines().next().unwrap();
    assert!(
        line.starts_with(
            "::error file=a%2Cb%3Ac/V2__pct.sql,line=2,col=1,title=require-concurrent-index-creation::CREATE INDEX without CONCURRENTLY"
        ),
        "{line}"
    );
    assert!(!line.contains('\n'));
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
}

#[test]
fn github_format_on_other_commands_annotates_drift_and_errors() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id bigint PRIMARY KEY);\nSELECT 1/0;\n");
    // up: the failing statement as an annotation at its file:line:col, with the hint.
    let r = cm(&db, &dir, &["--format", "github", "up"]);
    assert_eq!(r.code, 2);
    let file = dir.shown("V2__b.sql");
    let annotation = r
        .stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(
        annotation.starts_with(&format!(
            "::error file={},line=2,col=1,title=chatmigrate%3A database::version 2 failed: division by zero",
            file.replace(':', "%3A").replace(',', "%2C")
        )),
        "{annotation}"
    );
    assert!(
        annotation.contains("%0Ahint: fix the migration and run `chatmigrate up` again"),
        "{annotation}"
    );
    assert!(
        r.stderr
            .starts_with(&format!("error: {file}:2:1: version 2 failed: division by zero")),
        "{}",
        r.stderr
    );
    // verify: each drifted file as an annotation.
    dir.write("V2__b.sql", "CREATE TABLE b (id bigint PRIMARY KEY);\n");
    cm(&db, &dir, &["up"]).assert_ok();
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint PRIMARY KEY, x int);\n");
    let r = cm(&db, &dir, &["--format", "github", "verify"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let annotation = r
        .stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(
        annotation.starts_with(&format!(
            "::error file={},line=1,title=drift%3A changed::changed: V1 a (",
            dir.shown("V1__a.sql")
        )),
        "{annotation}"
    );
    // An error without a file: an annotation without one.
    let r = run_in(dir.path(), &["--format", "github", "--env", "nope", "status"], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout
            .starts_with("::error title=chatmigrate%3A config::environment `nope` is not defined"),
        "{}",
        r.stdout
    );
    // sarif is for lint only.
    let r = cm(&db, &dir, &["--format", "sarif", "status"]);
    r.assert_error("--format sarif is not available for `status`");
    assert_eq!(r.hint(), "hint: `status` writes --format text or json or github");
}
