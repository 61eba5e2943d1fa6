//! Cache entries as the disk and Redis tiers hand them back, torn, altered or foreign: decoded
//! and verified, or refused. What decodes re-encodes to the same bytes (the layout is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use odg_cache::{decode_entry, decode_entry_header, encode_entry};

fuzz_target!(|bytes: &[u8]| {
    let _ = decode_entry_header(bytes);
    if let Ok(entry) = decode_entry(bytes) {
        assert_eq!(
            decode_entry_header(bytes).as_ref(),
            Ok(&entry.meta),
            "the header agrees with the entry"
        );
        assert_eq!(encode_entry(&entry), bytes, "canonical layout");
    }
});
