//! Argo Events generic event source gRPC service (tonic) for FTP polling.
