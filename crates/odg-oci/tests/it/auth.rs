//! Authentication: basic auth against a real htpasswd registry, Bearer tokens against the fake.

use std::collections::HashMap;

use odg_oci::{
    Credentials, OciErrorKind, OciStore, RegistryClient, RegistryClientConfig, RegistryEndpoint,
};
use odg_test_support::{BearerAuth, FakeRegistry, OciImageFixture, PathKind, RegistryServer};

use crate::{fast_config, push_image};

fn endpoint_with(host: &str, credentials: Option<(&str, &str)>) -> RegistryEndpoint {
    let config = RegistryClientConfig {
        credentials: credentials
            .map(|(user, password)| {
                HashMap::from([(host.to_owned(), Credentials::new(user, password))])
            })
            .unwrap_or_default(),
        ..fast_config()
    };
    RegistryClient::new(config).unwrap().endpoint(true, host)
}

#[tokio::test]
async fn basic_auth_registry_with_good_bad_and_no_credentials() {
    let registry = RegistryServer::start_with_htpasswd("alice", "wonderland").await;
    let good = endpoint_with(&registry.host(), Some(("alice", "wonderland")));
    let image = OciImageFixture::simple("basic");
    push_image(&good, "private/app", "1.0.0", &image).await;
    let fetched = good.get_manifest("private/app", "1.0.0").await.unwrap();
    assert_eq!(fetched.digest, image.digest);
    assert_eq!(good.list_tags("private/app").await.unwrap(), vec!["1.0.0"]);

    let bad = endpoint_with(&registry.host(), Some(("alice", "looking-glass")));
    let error = bad.get_manifest("private/app", "1.0.0").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Unauthorized);
    assert!(!error.to_string().contains("looking-glass"));

    let anonymous = endpoint_with(&registry.host(), None);
    let error = anonymous
        .get_manifest("private/app", "1.0.0")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Unauthorized);
    let error = anonymous.list_tags("private/app").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Unauthorized);
}

#[tokio::test]
async fn bearer_token_is_fetched_once_and_reused() {
    let image = OciImageFixture::simple("bearer");
    let fake = FakeRegistry::builder()
        .bearer_auth(BearerAuth {
            credentials: Some(("bob".to_owned(), "builder".to_owned())),
            expires_in: Some(300),
            use_access_token_field: false,
        })
        .image("team/app", "1.0.0", &image)
        .image("team/other", "2.0.0", &image)
        .start()
        .await;
    let store = endpoint_with(&fake.host(), Some(("bob", "builder")));
    for _ in 0..3 {
        let fetched = store.get_manifest("team/app", "1.0.0").await.unwrap();
        assert_eq!(fetched.digest, image.digest);
    }
    for (digest, bytes) in image.blobs() {
        assert_eq!(
            store.get_blob("team/app", &digest, 1024).await.unwrap(),
            bytes
        );
    }
    assert_eq!(store.list_tags("team/app").await.unwrap(), vec!["1.0.0"]);
    assert_eq!(
        fake.requests(PathKind::Token),
        1,
        "one token for repository:team/app:pull"
    );
    // The first request went anonymous (challenge), every later one carried the token.
    assert_eq!(fake.requests(PathKind::Manifest), 4);

    // Another repository is another scope: one more token.
    store.get_manifest("team/other", "2.0.0").await.unwrap();
    assert_eq!(fake.requests(PathKind::Token), 2);

    // A revoked token is dropped and replaced once.
    fake.revoke_tokens();
    store.get_manifest("team/app", "1.0.0").await.unwrap();
    assert_eq!(fake.requests(PathKind::Token), 3);
    store.get_manifest("team/app", "1.0.0").await.unwrap();
    assert_eq!(fake.requests(PathKind::Token), 3);
}

#[tokio::test]
async fn concurrent_requests_share_one_token_fetch() {
    let image = OciImageFixture::simple("concurrent");
    let fake = FakeRegistry::builder()
        .bearer_auth(BearerAuth {
            use_access_token_field: true,
            ..BearerAuth::default()
        })
        .image("team/app", "1.0.0", &image)
        .image("team/other", "1.0.0", &image)
        .start()
        .await;
    let store = endpoint_with(&fake.host(), None);
    // Learn the scheme first; then many requests at once for a new scope.
    store.get_manifest("team/app", "1.0.0").await.unwrap();
    assert_eq!(fake.requests(PathKind::Token), 1);
    let fetches = (0..8).map(|_| {
        let store = store.clone();
        let digest = image.digest.clone();
        async move { store.get_manifest("team/other", &digest).await }
    });
    let results = futures::future::join_all(fetches).await;
    assert!(results.iter().all(|result| result.is_ok()));
    assert_eq!(
        fake.requests(PathKind::Token),
        2,
        "one more token, shared by all eight"
    );
}

#[tokio::test]
async fn bearer_with_bad_credentials_is_unauthorized_and_leaks_nothing() {
    let image = OciImageFixture::simple("bad");
    let fake = FakeRegistry::builder()
        .bearer_auth(BearerAuth {
            credentials: Some(("bob".to_owned(), "builder".to_owned())),
            ..BearerAuth::default()
        })
        .image("team/app", "1.0.0", &image)
        .start()
        .await;
    let store = endpoint_with(&fake.host(), Some(("bob", "wrong-password")));
    let error = store.get_manifest("team/app", "1.0.0").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Unauthorized, "{error}");
    let printed = format!("{error} {error:?}");
    assert!(!printed.contains("wrong-password"), "{printed}");
    // No retries on 401: one anonymous attempt, one token request.
    assert_eq!(fake.requests(PathKind::Token), 1);
    assert_eq!(fake.requests(PathKind::Manifest), 1);
}

#[tokio::test]
async fn push_with_bearer_uses_push_scope_and_relative_upload_location() {
    let fake = FakeRegistry::builder()
        .bearer_auth(BearerAuth::default())
        .start()
        .await;
    let store = endpoint_with(&fake.host(), None);
    let image = OciImageFixture::simple("push");
    let digest = push_image(&store, "team/pushed", "1.0.0", &image).await;
    assert_eq!(digest, image.digest);
    for (blob_digest, bytes) in image.blobs() {
        assert_eq!(fake.blob("team/pushed", &blob_digest), Some(bytes));
    }
    let (media_type, bytes) = fake.manifest("team/pushed", "1.0.0").unwrap();
    assert_eq!(media_type, odg_oci::OCI_MANIFEST_MEDIA_TYPE);
    assert_eq!(bytes, image.manifest);
    // One push-scope token did everything.
    assert_eq!(fake.requests(PathKind::Token), 1);
}

#[tokio::test]
async fn redirected_blob_fetches_carry_no_credentials() {
    let image = OciImageFixture::simple("redirect");
    let storage = FakeRegistry::builder()
        .image("team/app", "1.0.0", &image)
        .start()
        .await;
    let fake = FakeRegistry::builder()
        .bearer_auth(BearerAuth::default())
        .image("team/app", "1.0.0", &image)
        .redirect_blobs_to(&storage.url())
        .start()
        .await;
    let store = endpoint_with(&fake.host(), Some(("bob", "builder")));
    for (digest, bytes) in image.blobs() {
        assert_eq!(
            store.get_blob("team/app", &digest, 1024).await.unwrap(),
            bytes
        );
    }
    assert_eq!(storage.requests(PathKind::Blob), 2);
    assert_eq!(
        storage.authorized_requests(),
        0,
        "no Authorization header may reach storage"
    );
    assert!(fake.authorized_requests() >= 2);
}
