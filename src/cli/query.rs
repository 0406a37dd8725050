//! `shardfold query` (placeholder).
