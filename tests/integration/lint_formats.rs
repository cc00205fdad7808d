//! The expected outputs of `lint --format sarif` and `lint --format github`
//! (tests/fixtures/lint-formats/, where the formats are specified) agree
//! with what `lint --format json` finds in the same files: the fixtures
//! are built here from the JSON by the specification's rules, so they
//! cannot rot before the renderers exist.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::*;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint-formats")
}

fn lint_json() -> Value {
    let r = run_in(&fixture(), &["--migrations", "migrations", "--format", "json", "lint"], &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    serde_json::from_str(r.stdout.trim()).unwrap()
}

#[test]
fn the_sarif_fixture_is_what_lint_finds() {
    let found = lint_json();
    let findings = found["findings"].as_array().unwrap();
    let mut rules: Vec<Value> = Vec::new();
    let mut results = Vec::new();
    for f in findings {
        let id = f["rule"].as_str().unwrap();
        let index = match rules.iter().position(|r| r["id"] == id) {
            Some(i) => i,
            None => {
                rules.push(json!({
                    "id": id,
                    "helpUri": format!("https://docs.rs/crate/chatmigrate/{{VERSION}}/source/docs/rules/{id}.md"),
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
    let expected = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "chatmigrate",
                "version": "{VERSION}",
                "informationUri": "https://docs.rs/crate/chatmigrate/{VERSION}/source/docs/lint.md",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let text = std::fs::read_to_string(fixture().join("expected.sarif.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(fixture, expected);
    assert_eq!(fixture["runs"][0]["results"].as_array().unwrap().len(), 3);
}

#[test]
fn the_github_fixture_is_what_lint_finds() {
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
                data(&format!("{}\nhelp: {}", f["message"].as_str().unwrap(), f["help"].as_str().unwrap()))
            )
        })
        .collect();
    let text = run_in(&fixture(), &["--migrations", "migrations", "lint"], &[]);
    lines.push(text.stdout.lines().last().unwrap().to_string());
    let expected = lines.join("\n") + "\n";
    assert_eq!(std::fs::read_to_string(fixture().join("expected.github.txt")).unwrap(), expected);
}
