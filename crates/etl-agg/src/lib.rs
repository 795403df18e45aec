//! Max-by-column aggregation over Parquet record batches; pure.
