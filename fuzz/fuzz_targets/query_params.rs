//! Query strings as clients send them: the typed extraction answers a value or a 400 naming the
//! parameter, never a panic. The struct holds every kind of field the routes declare.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odg_server::params::{parse_query, DateParam, DepthParam, VersionParam};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // read only by Debug: the fuzzer checks the parse, not the values
struct EveryKind {
    component_name: String,
    #[serde(default)]
    version: Option<VersionParam>,
    #[serde(default)]
    max: Option<usize>,
    #[serde(default)]
    recursion_depth: Option<DepthParam>,
    #[serde(default)]
    ignore_cache: bool,
    #[serde(default)]
    raw: bool,
    #[serde(default, rename = "type")]
    types: Vec<String>,
    #[serde(default)]
    start_date: Option<DateParam>,
}

fuzz_target!(|query: &str| {
    if let Err(error) = parse_query::<EveryKind>(query) {
        // every error names the parameter it is about
        assert!(error.parameter().is_some(), "{error}");
    }
});
