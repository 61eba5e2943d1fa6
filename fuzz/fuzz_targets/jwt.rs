//! Bearer credentials on state-changing routes: any `Authorization` header, and tokens whose
//! header and claims are arbitrary bytes but whose HS256 signature is valid (so the claims
//! handling after verification is reached too). A 401/403 or a principal, never a panic.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use odg_server::{AuthConfig, Authenticator, JwtAlgorithm, JwtConfig, ROLE_METADATA_WRITER};

const SECRET: &str = "fuzzing-secret-of-at-least-32-bytes!";

/// Built once: compiling the RBAC's route patterns and hashing the admin tokens cost far more
/// than checking one header, and would leave the fuzzer a few hundred inputs a second.
fn authenticator() -> &'static Authenticator {
    static AUTHENTICATOR: std::sync::OnceLock<Authenticator> = std::sync::OnceLock::new();
    AUTHENTICATOR.get_or_init(new_authenticator)
}

fn new_authenticator() -> Authenticator {
    Authenticator::new(&AuthConfig {
        admin_tokens: vec!["admin-token-for-fuzzing".into()],
        jwt: Some(JwtConfig {
            algorithm: JwtAlgorithm::Hs256,
            key: SECRET.into(),
            roles_claim: "roles".into(),
            issuer: None,
            audience: None,
        }),
        ..AuthConfig::default()
    })
    .expect("a valid configuration")
}

fn authorize(authenticator: &Authenticator, header: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(header) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let _ = authenticator.authorize(&headers, "PUT", "/artefacts/metadata", ROLE_METADATA_WRITER);
}

fuzz_target!(|input: &[u8]| {
    let authenticator = authenticator();
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        authorize(authenticator, rest);
        return;
    }
    // A token signed with the configured secret: `header_len` bytes of header, the rest claims.
    let Some((&header_len, rest)) = rest.split_first() else {
        return;
    };
    let (header, claims) = rest.split_at(usize::from(header_len).min(rest.len()));
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let Ok(signature) = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
    else {
        return;
    };
    authorize(
        authenticator,
        format!("Bearer {message}.{signature}").as_bytes(),
    );
});
