//! `shardfold ingest` (placeholder).
