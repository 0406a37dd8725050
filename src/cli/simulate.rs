//! `shardfold simulate` (placeholder).
