fn main() {
    // include_dir! embeds migrations/; rebuild when any file there changes.
    println!("cargo:rerun-if-changed=migrations");
}
