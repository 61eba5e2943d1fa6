//! A pool whose connections are all busy answers "unavailable" after the acquire timeout; a
//! database that cannot be reached answers "unreachable" and is reconnected in the background.

use std::time::{Duration, Instant};

use odg_delivery_db::{DbStatus, MetadataQuery, StoreError, StoreErrorKind};

use crate::support::{postgres, sqlite, SHORT};

#[tokio::test]
async fn an_exhausted_pool_fails_fast_instead_of_hanging() {
    let small = |mut config: odg_delivery_db::DatabaseConfig| {
        config.max_connections = 1;
        config.acquire_timeout = SHORT;
        config
    };
    for backend in [sqlite(small).await, postgres("pool", small).await] {
        let holder = {
            let db = backend.db.clone();
            tokio::spawn(async move { db.hold_connection_for(Duration::from_secs(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await; // under test: a connection held busy
        let started = Instant::now();
        let error = backend
            .db
            .query(&MetadataQuery::default())
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::PoolExhausted { .. }),
            "{}: {error}",
            backend.name
        );
        assert_eq!(error.kind(), StoreErrorKind::Unavailable);
        assert!(started.elapsed() < SHORT * 4, "{:?}", started.elapsed());
        holder.await.unwrap().unwrap();
        assert!(backend.db.query(&MetadataQuery::default()).await.is_ok());
    }
}

/// A loopback address where nothing listens (a server that is down).
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Polls `check` every 50 ms until it holds; panics after `deadline`.
async fn eventually(deadline: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // polling: until the check holds
    }
}

#[tokio::test]
async fn a_database_down_at_start_is_reached_later_and_a_lost_one_is_unreachable_not_busy() {
    let database = odg_test_support::TestDatabase::create("unreachable").await;
    let addr = closed_port();
    let mut config = odg_delivery_db::DatabaseConfig::new(database.url_via(addr));
    config.acquire_timeout = SHORT;
    let db = odg_delivery_db::DeliveryDb::open(&config)
        .await
        .expect("a database that is down does not fail the start");
    assert_eq!(db.health().status, DbStatus::Connecting);
    let error = db.query(&MetadataQuery::default()).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unreachable, "{error}");
    assert!(
        error.to_string().starts_with("delivery DB unreachable"),
        "{error}"
    );
    // A connect attempt that is refused until the acquire timeout is no busy pool either.
    assert!(db.health().last_error.is_some());

    // The server comes up at that address: the background task migrates, queries work.
    let forwarder =
        odg_test_support::TcpForwarder::start_on(addr, odg_test_support::postgres_server_addr())
            .await
            .expect("the closed port is still free");
    eventually(Duration::from_secs(60), "reconnected", async || {
        db.query(&MetadataQuery::default()).await.is_ok()
    })
    .await;
    assert_eq!(db.health().status, DbStatus::Up);

    // Lost after start: unreachable (not "every connection is busy"), then back again.
    forwarder.cut();
    let error = db.query(&MetadataQuery::default()).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unreachable, "{error}");
    assert!(
        !matches!(error, StoreError::PoolExhausted { .. }),
        "{error}"
    );
    assert_eq!(db.health().status, DbStatus::Unreachable);
    forwarder.restore();
    eventually(
        Duration::from_secs(60),
        "reconnected after the cut",
        async || db.query(&MetadataQuery::default()).await.is_ok(),
    )
    .await;
    eventually(Duration::from_secs(60), "reported up again", async || {
        db.health().status == DbStatus::Up
    })
    .await;
}
