//! Users and refresh tokens in the original's `users` / `user_identifiers` tables, on both backends.

use odg_delivery_db::{RefreshToken, Rotation};
use serde_json::json;

use crate::support::both;

#[tokio::test]
async fn users_are_created_once_per_identity_and_refresh_tokens_rotate_once() {
    for backend in both("users").await {
        let db = &backend.db;
        let name = backend.name;
        let digest = "0123456789abcdef0123456789abcdef01234567";
        let identifier =
            json!({"username": "alice", "email_address": null, "hostname": "github.example"});
        assert_eq!(
            db.user_id_by_identifier("github", digest).await.unwrap(),
            None,
            "{name}"
        );
        let id = "11111111-2222-3333-4444-555555555555";
        let bindings = vec![json!({"name": "writer", "origin": {"type": "github"}})];
        assert_eq!(
            db.upsert_user(id, "github", digest, &identifier, &bindings)
                .await
                .unwrap(),
            id
        );
        // a second login keeps the id and rebinds the roles
        let again = vec![json!({"name": "reader", "origin": {"type": "github"}})];
        let other = "99999999-2222-3333-4444-555555555555";
        assert_eq!(
            db.upsert_user(other, "github", digest, &identifier, &again)
                .await
                .unwrap(),
            id,
            "{name}"
        );
        assert_eq!(
            db.user_id_by_identifier("github", digest)
                .await
                .unwrap()
                .as_deref(),
            Some(id)
        );
        let user = db.user(id).await.unwrap().unwrap();
        assert_eq!(user.role_bindings, again, "{name}");
        assert_eq!(
            user.identifiers,
            vec![("github".to_string(), identifier.clone())],
            "{name}"
        );
        assert!(db.user(other).await.unwrap().is_none());

        let first = RefreshToken {
            identifier: "a".into(),
            exp: 2_000,
        };
        let second = RefreshToken {
            identifier: "b".into(),
            exp: 2_000,
        };
        let expired = RefreshToken {
            identifier: "old".into(),
            exp: 500,
        };
        assert_eq!(
            db.rotate_refresh_token(id, None, Some(expired), 100)
                .await
                .unwrap(),
            Rotation::Done(again.clone())
        );
        assert_eq!(
            db.rotate_refresh_token(id, None, Some(first), 1_000)
                .await
                .unwrap(),
            Rotation::Done(again.clone())
        );
        // the expired token was dropped by the last write
        assert_eq!(
            db.rotate_refresh_token(id, Some("old"), None, 1_000)
                .await
                .unwrap(),
            Rotation::UnknownToken,
            "{name}"
        );
        assert_eq!(
            db.rotate_refresh_token(id, Some("a"), Some(second), 1_000)
                .await
                .unwrap(),
            Rotation::Done(again.clone())
        );
        assert_eq!(
            db.rotate_refresh_token(id, Some("a"), None, 1_000)
                .await
                .unwrap(),
            Rotation::UnknownToken,
            "{name}"
        );
        assert_eq!(
            db.rotate_refresh_token(id, Some("b"), None, 1_000)
                .await
                .unwrap(),
            Rotation::Done(again.clone())
        );
        assert_eq!(
            db.rotate_refresh_token(id, Some("b"), None, 1_000)
                .await
                .unwrap(),
            Rotation::UnknownToken
        );
        assert_eq!(
            db.rotate_refresh_token(other, None, None, 1_000)
                .await
                .unwrap(),
            Rotation::NoSuchUser
        );
    }
}

#[tokio::test]
async fn concurrent_first_logins_of_one_identity_make_one_user() {
    for backend in both("users_race").await {
        let db = &backend.db;
        let digest = "76543210fedcba9876543210fedcba9876543210";
        let identifier =
            json!({"username": "bob", "email_address": null, "hostname": "github.example"});
        let bindings = vec![json!({"name": "reader", "origin": {"type": "github"}})];
        let ids = [
            "aaaaaaaa-0000-4000-8000-000000000001",
            "aaaaaaaa-0000-4000-8000-000000000002",
        ];
        let (first, second) = tokio::join!(
            db.upsert_user(ids[0], "github", digest, &identifier, &bindings),
            db.upsert_user(ids[1], "github", digest, &identifier, &bindings),
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first, second, "{}", backend.name);
        assert_eq!(
            db.user_id_by_identifier("github", digest).await.unwrap(),
            Some(first)
        );
    }
}
