fn main() {
    // include_dir! embeds migrations/ and dialects/citus/migrations/; rebuild
    // when any file there changes.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=dialects/citus/migrations");
}
