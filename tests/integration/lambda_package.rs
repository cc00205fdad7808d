//! scripts/package-lambda.sh's check of the binary it packages (`--check
//! FILE`, also run on every build): no glibc symbol version newer than
//! Amazon Linux 2023's 2.34, no shared library the provided.al2023 image may
//! lack, stripped. Tried on small C programs built here with `cc`, one of
//! them with its version reference rewritten to GLIBC_2.38 (what a build on
//! a newer system than Amazon Linux 2023 produces). The build itself
//! (cargo zigbuild, release, ~12 min) is not run by the suite.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Checked {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(file: &Path) -> Checked {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package-lambda.sh");
    let out = Command::new("bash").arg(script).arg("--check").arg(file).output().unwrap();
    Checked {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compiles `source` (C) with `cc` into `dir/name`; stripped unless `keep_symbols`.
fn c_program(dir: &Path, name: &str, source: &str, libs: &[&str], keep_symbols: bool) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let mut cc = Command::new("cc");
    cc.arg("-O2").arg("-o").arg(&out).arg(&src).args(libs);
    if !keep_symbols {
        cc.arg("-s");
    }
    let r = cc.output().expect("cc (build-essential, installed by scripts/deps.sh)");
    assert!(r.status.success(), "cc failed: {}", String::from_utf8_lossy(&r.stderr));
    out
}

/// The highest GLIBC_ version `file` refers to, as readelf shows it.
fn highest_glibc(file: &Path) -> String {
    let out = Command::new("readelf").args(["-V", "--wide"]).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut versions: Vec<Vec<u32>> = text
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let v: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let parts: Vec<u32> = v.split('.').filter_map(|p| p.parse().ok()).collect();
            (!parts.is_empty()).then_some(parts)
        })
        .collect();
    versions.sort();
    versions
        .last()
        .map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join("."))
        .unwrap_or_default()
}

#[test]
fn the_glibc_check_passes_a_stripped_al2023_binary_and_refuses_newer_symbols() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = c_program(
        tmp.path(),
        "hello",
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
        &[],
        false,
    );
    let highest = highest_glibc(&ok);
    assert!(!highest.is_empty(), "readelf found no GLIBC_ version in {}", ok.display());
    let r = check(&ok);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "{}: needs GLIBC_{highest} at most (Amazon Linux 2023 has 2.34); libraries: libc.so.6; stripped\n",
            ok.display()
        )
    );

    // The same program as a build on a newer system makes it: its reference
    // to GLIBC_2.34 (__libc_start_main) becomes GLIBC_2.38.
    let bytes = std::fs::read(&ok).unwrap();
    let (from, to) = (b"GLIBC_2.34", b"GLIBC_2.38");
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the program refers to GLIBC_2.34");
    let mut newer = bytes.clone();
    newer[at..at + to.len()].copy_from_slice(to);
    let newer_path = tmp.path().join("newer");
    std::fs::write(&newer_path, &newer).unwrap();
    let r = check(&newer_path);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: {} needs GLIBC_2.38, newer than Amazon Linux 2023's 2.34",
            newer_path.display()
        )
    );
    assert!(
        r.stderr
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("hint: build with scripts/package-lambda.sh"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_check_refuses_a_library_the_image_may_lack_symbols_and_non_elf_files() {
    let tmp = tempfile::tempdir().unwrap();
    // libssl (libssl-dev is a build dependency): the vendored-openssl feature links it in instead.
    let ssl = c_program(
        tmp.path(),
        "ssl",
        "#include <openssl/ssl.h>\nint main(void) { return OPENSSL_init_ssl(0, NULL) ? 0 : 1; }\n",
        &["-lssl"],
        false,
    );
    let r = check(&ssl);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!("error: {} needs libssl.so.3, which provided.al2023 may not have", ssl.display())
    );
    // Not stripped.
    let symbols = c_program(tmp.path(), "symbols", "int main(void) { return 0; }\n", &[], true);
    let r = check(&symbols);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, format!("error: {} is not stripped\n", symbols.display()));
    // Not a binary; not there.
    let text = tmp.path().join("bootstrap.sh");
    std::fs::write(&text, "#!/bin/sh\n").unwrap();
    let r = check(&text);
    assert_eq!((r.code, r.stderr), (1, format!("error: {} is not an ELF binary\n", text.display())));
    let r = check(&tmp.path().join("nope"));
    assert_eq!(r.code, 2);
}
