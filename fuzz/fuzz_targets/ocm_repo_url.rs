//! `ocm_repo_url` as a client sends it: parsed or refused; what parses prints back to text that
//! parses to the same repository.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odg_ocm::OcmRepositoryUrl;

fuzz_target!(|text: &str| {
    if let Ok(url) = text.parse::<OcmRepositoryUrl>() {
        let printed = url.to_string();
        let reparsed: OcmRepositoryUrl = printed
            .parse()
            .expect("a printed repository URL parses again");
        assert_eq!(reparsed, url, "{text:?} -> {printed:?}");
    }
});
