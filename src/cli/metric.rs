//! `shardfold metric` (placeholder).
