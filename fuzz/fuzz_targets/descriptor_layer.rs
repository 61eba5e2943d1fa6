//! Descriptor layers as a registry could serve them: any bytes under any of the media types (or
//! none, which sniffs tar vs. text). Decoding must answer (a descriptor or an error) without
//! panicking, and what it accepts must survive our own YAML writer and JSON unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odg_ocm::{
    decode_descriptor_layer, descriptor_to_yaml, parse_descriptor_document, ComponentDescriptor,
    DecodeLimits, DESCRIPTOR_LAYER_MEDIA_TYPES,
};

fuzz_target!(|input: &[u8]| {
    let Some((&selector, layer)) = input.split_first() else {
        return;
    };
    let media_type = DESCRIPTOR_LAYER_MEDIA_TYPES
        .get(usize::from(selector) % (DESCRIPTOR_LAYER_MEDIA_TYPES.len() + 1))
        .copied()
        .unwrap_or("application/octet-stream");
    let limits = DecodeLimits::default();
    let Ok(decoded) = decode_descriptor_layer(media_type, layer, &limits) else {
        return;
    };
    let json = serde_json::to_vec(&decoded.descriptor).expect("a decoded descriptor serialises");
    let from_json: ComponentDescriptor =
        serde_json::from_slice(&json).expect("our own JSON parses");
    assert_eq!(from_json, decoded.descriptor, "JSON round trip");
    let yaml = descriptor_to_yaml(&decoded.descriptor);
    let from_yaml = parse_descriptor_document(&yaml, &limits).expect("our own YAML parses");
    assert_eq!(from_yaml, decoded.descriptor, "YAML round trip");
});
