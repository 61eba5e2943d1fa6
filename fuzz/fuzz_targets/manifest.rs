//! Manifests and indexes as a registry could serve them, with any of the content types it could
//! claim: parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odg_oci::manifest::sniff_manifest_media_type;
use odg_oci::{
    parse_manifest, DOCKER_MANIFEST_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE,
};

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some(OCI_MANIFEST_MEDIA_TYPE),
    Some(OCI_INDEX_MEDIA_TYPE),
    Some(DOCKER_MANIFEST_MEDIA_TYPE),
    Some(DOCKER_MANIFEST_LIST_MEDIA_TYPE),
    Some("application/json; charset=utf-8"),
];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let _ = parse_manifest(body, content_type);
    let _ = sniff_manifest_media_type(body);
});
