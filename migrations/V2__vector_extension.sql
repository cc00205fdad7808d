-- pgvector: the `vector` type and the HNSW / IVFFlat index methods.
CREATE EXTENSION IF NOT EXISTS vector;
