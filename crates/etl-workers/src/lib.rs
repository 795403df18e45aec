//! Library behind the worker binaries.
