//! What a registry sends besides bodies: `Link` pagination headers, `Retry-After`, and the
//! references and digests it names. Parsed or refused, never a panic.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use odg_oci::digest::parse_digest;
use odg_oci::pagination::parse_next_link;
use odg_oci::reference::{validate_reference, validate_repository, validate_tag};
use odg_retry::parse_retry_after;

fuzz_target!(|text: &str| {
    let base = url::Url::parse("https://registry.example/v2/acme/tags/list?n=100")
        .expect("a valid base");
    // The client refuses a next page on another origin; the parser only resolves it.
    let _ = parse_next_link(text, &base);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = parse_retry_after(text, now);
    let _ = validate_reference(text);
    let _ = validate_repository(text);
    let _ = validate_tag(text);
    let _ = parse_digest(text);
});
