//! The `agg` command (in progress).
