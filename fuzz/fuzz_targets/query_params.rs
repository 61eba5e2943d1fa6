//! Query strings as clients send them: every accessor answers a value or a 400, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odg_server::params::QueryParams;

const NAMES: [&str; 8] = [
    "component_name",
    "version",
    "max",
    "recursion_depth",
    "ignore_cache",
    "raw",
    "type",
    "",
];

fuzz_target!(|query: &str| {
    let params = QueryParams::parse(query);
    for name in NAMES {
        let _ = params.optional(name);
        let _ = params.required(name);
        let _ = params.boolean(name);
        let _ = params.unsigned(name, 5);
        let _ = params.depth(name);
        let _ = params.all(name);
    }
});
