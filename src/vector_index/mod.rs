//! Vector index builds (pgvector's HNSW and IVFFlat) as chatmigrate plans
//! them: which statements build one and with what options
//! ([`statement`]), and how much `maintenance_work_mem` the build needs so
//! that pgvector keeps the HNSW graph in memory ([`memory`]).
//!
//! Both are pure: no I/O. What they need from the database (the table's
//! row estimate and size, the column's type modifier, the server version
//! and settings, the options of an index that a `REINDEX` rebuilds) is read
//! by the caller and passed in. docs/vector-indexes.md explains the formula
//! and the measurements that check it.

pub mod memory;
pub mod plan;
pub mod statement;
