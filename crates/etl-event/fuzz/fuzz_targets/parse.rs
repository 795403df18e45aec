//! Fuzz target: neither parser may panic on any bytes, and whatever they accept
//! must be well-formed (created objects have a bucket and a key; FTP names are set).
#![no_main]

use etl_event::{KeyEncoding, parse_ftp_event, parse_notification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for encoding in [KeyEncoding::Auto, KeyEncoding::Raw, KeyEncoding::Url] {
        if let Ok(notification) = parse_notification(data, encoding) {
            for object in &notification.objects {
                assert!(!object.bucket.is_empty());
                assert!(!object.key.is_empty());
            }
            if notification.nothing_to_do.is_some() {
                assert!(notification.objects.is_empty());
            }
        }
    }
    if let Ok(file) = parse_ftp_event(data) {
        assert!(!file.name.is_empty());
    }
});
