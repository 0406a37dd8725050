//! `shardfold inspect` (placeholder).
