//! Notification payloads (S3, SNS, SQS, MinIO, EventBridge, generic FTP) to object references; pure.
