//! Request bodies of the metadata routes: artefact metadata entries (`PUT`/`DELETE`) and the
//! component artefact ids of queries. Parsed and identified, or refused naming the field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odg_delivery_db::{prepare_entries, ComponentArtefactId, PreparedEntry};
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    let _ = PreparedEntry::from_json(&value);
    let _ = ComponentArtefactId::from_json(&value, true);
    let _ = ComponentArtefactId::from_json(&value, false);
    if let Some(Value::Array(entries)) = value.get("entries") {
        let _ = prepare_entries(entries);
    }
});
