//! Earlier checksums of the shipped chat schema's files that a database may
//! hold: when a shipped file's text changes in a way that makes the same
//! schema (V3 and V4 gained the `embedding_dimensions` / `embedding_type`
//! placeholders, whose defaults give the text they had), a database that
//! applied the earlier text is not drift. Only the embedded set has these;
//! a file on disk is judged by its own checksum alone.
//!
//! Adding an entry: the earlier file's `sha256:` (as the history holds it),
//! with a note of the release that changed it. Never for a change that makes
//! a different schema: that is a new migration.

/// (file name, earlier checksums that the file's current text accepts).
const EARLIER: &[(&str, &[&str])] = &[
    // `vector(1024)` became `${embedding_type}(${embedding_dimensions})`.
    (
        "V3__st_chat_history_vector_table.sql",
        &["sha256:b50d0a7618118e5d501a8339cae071ea62c4953ab29fa617ec9aca19437613f9"],
    ),
    // `vector_l2_ops` became `${embedding_type}_l2_ops`; later the file's
    // own memory setting went.
    (
        "V4__st_chat_history_vector_hnsw.sql",
        &[
            "sha256:109c1b17e82d60b5167dc9cfe50e427735a1731e5973c8a216f8f7803e0833d4",
            // Its own `SET maintenance_work_mem = '256MB'` / `RESET` went:
            // chatmigrate plans the build's memory (docs/vector-indexes.md),
            // and a file's own setting would override the plan.
            "sha256:9d753b3286698b4a56c9883beedc742f5ba4519125c050c44c95622b07137963",
        ],
    ),
];

/// The earlier checksums a shipped file (by file name) accepts.
pub fn earlier(file_name: &str) -> &'static [&'static str] {
    EARLIER.iter().find(|(n, _)| *n == file_name).map_or(&[], |(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_entry_names_a_shipped_file_and_an_earlier_text() {
        let files = crate::migration::embedded_files();
        for (name, earlier) in super::EARLIER {
            let (_, bytes) = files.iter().find(|(n, _)| n == name).expect("a shipped file");
            let now = crate::migration::checksum(std::str::from_utf8(bytes).unwrap());
            assert!(
                !earlier.contains(&now.as_str()),
                "{name}: its current checksum is not an earlier one"
            );
        }
    }
}
