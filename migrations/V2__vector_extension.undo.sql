-- Undo of V2: pgvector goes. Refused by the server while a column still
-- has one of its types (undo V3 first; `down` goes in that order).
DROP EXTENSION IF EXISTS vector;
