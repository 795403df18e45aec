//! S3 edge: client construction, streaming get, atomic put, head, list.
