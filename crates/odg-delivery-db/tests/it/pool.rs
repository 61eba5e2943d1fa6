//! A pool whose connections are all busy answers "unavailable" after the acquire timeout.

use std::time::{Duration, Instant};

use odg_delivery_db::{MetadataQuery, StoreError, StoreErrorKind};

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
        tokio::time::sleep(Duration::from_millis(100)).await;
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
