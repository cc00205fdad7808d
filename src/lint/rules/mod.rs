//! One module per lint rule; each exposes `pub static RULE` and is listed
//! once in [`crate::lint::RULES`]. Each has its page in `docs/rules/<id>.md`.

pub mod adding_field_with_default;
pub mod adding_not_nullable_field;
pub mod ban_char_field;
pub mod changing_column_type;
pub mod citus_distribution_column_change;
pub mod citus_foreign_key_not_colocated;
pub mod citus_foreign_key_to_distributed;
pub mod citus_parallel_operation;
pub mod citus_unique_without_distribution_column;
pub mod constraint_missing_not_valid;
pub mod data_api_session_setting;
pub mod data_api_statement_too_long;
pub mod data_api_temp_table;
pub mod disallowed_unique_constraint;
pub mod dropping_column_or_table;
pub mod identifier_too_long;
pub mod naming_convention;
pub mod pgvector_dimension_change;
pub mod pgvector_explicit_opclass;
pub mod pgvector_hnsw_build_memory;
pub mod pgvector_index_concurrently;
pub mod pgvector_index_dimensions;
pub mod prefer_bigint_key;
pub mod prefer_robust_stmts;
pub mod prefer_timestamptz;
pub mod renaming_column_or_table;
pub mod require_concurrent_index_creation;
pub mod require_concurrent_index_deletion;
pub mod transaction_incompatible;
pub mod transaction_nesting;
pub mod unused_ignore;
