//! FTP edge: connection, listing, streaming download (suppaftp).
