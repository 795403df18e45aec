//! Streaming CSV to Parquet / JSON Lines / CSV conversion; pure and synchronous.
