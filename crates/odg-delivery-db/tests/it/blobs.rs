//! The blob store on both backends: round trip in chunks, ranges, all-or-nothing uploads.

use bytes::Bytes;
use futures::StreamExt;
use odg_delivery_db::{BlobUpload, StoreError, StoreErrorKind, BLOB_CHUNK_BYTES};
use sha2::{Digest, Sha256};

use crate::support::both;

fn upload(content: &[u8], max_bytes: u64) -> BlobUpload {
    BlobUpload {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(content))),
        mime_type: "application/octet-stream".into(),
        max_bytes,
        idle_timeout: std::time::Duration::from_secs(5),
    }
}

fn body(content: &[u8], part: usize) -> impl futures::Stream<Item = Result<Bytes, String>> + Unpin {
    let parts: Vec<Result<Bytes, String>> = content
        .chunks(part)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    futures::stream::iter(parts)
}

async fn read_all(db: &odg_delivery_db::DeliveryDb, digest: &str, start: u64, end: u64) -> Vec<u8> {
    let record = db.blob(digest).await.unwrap().expect("stored");
    let mut stream = Box::pin(db.blob_content(&record, start, end));
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn count_chunks(db: &odg_delivery_db::DeliveryDb) -> i64 {
    db.blob_storage_units().await.unwrap()
}

#[tokio::test]
async fn blobs_round_trip_in_chunks_with_ranges_and_failed_uploads_leave_nothing() {
    for backend in both("blobs_round_trip").await {
        let db = &backend.db;
        let name = backend.name;
        // a bit over two chunks, sent in parts that do not align with them
        let content: Vec<u8> = (0..(2 * BLOB_CHUNK_BYTES + 1000))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let request = upload(&content, 1 << 30);
        let record = db.put_blob(&request, body(&content, 10_000)).await.unwrap();
        assert_eq!(record.size, content.len() as u64, "{name}");
        let stored = db.blob(&request.digest).await.unwrap().unwrap();
        assert_eq!(stored.size, content.len() as u64, "{name}");
        assert!(stored.creation_date.is_some(), "{name}");
        assert_eq!(
            read_all(db, &request.digest, 0, stored.size).await,
            content,
            "{name}"
        );
        // a range across a chunk boundary
        let (start, end) = (BLOB_CHUNK_BYTES as u64 - 10, BLOB_CHUNK_BYTES as u64 + 20);
        assert_eq!(
            read_all(db, &request.digest, start, end).await,
            content[start as usize..end as usize],
            "{name}"
        );
        // the same digest again
        let error = db
            .put_blob(&request, body(&content, 4096))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::BlobExists { .. }),
            "{name}: {error}"
        );
        assert_eq!(error.kind(), StoreErrorKind::Conflict);

        let units = count_chunks(db).await;
        // a body that is not what the digest says
        let other = vec![1u8; 1000];
        let mut wrong = upload(&other, 1 << 30);
        wrong.digest = format!("sha256:{}", "0".repeat(64));
        let error = db.put_blob(&wrong, body(&other, 100)).await.unwrap_err();
        assert!(
            matches!(error, StoreError::DigestMismatch { .. }),
            "{name}: {error}"
        );
        // too large: refused while streaming
        let big = vec![2u8; 3 * BLOB_CHUNK_BYTES];
        let error = db
            .put_blob(&upload(&big, BLOB_CHUNK_BYTES as u64), body(&big, 65536))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::BlobTooLarge { .. }),
            "{name}: {error}"
        );
        assert_eq!(error.kind(), StoreErrorKind::TooLarge);
        // cut off after two chunks
        let cut = upload(&big, 1 << 30);
        let parts = futures::stream::iter(vec![
            Ok(Bytes::from(vec![2u8; 2 * BLOB_CHUNK_BYTES])),
            Err("connection reset".to_string()),
        ]);
        let error = db.put_blob(&cut, parts).await.unwrap_err();
        assert!(
            matches!(error, StoreError::UploadAborted(_)),
            "{name}: {error}"
        );
        assert!(db.blob(&cut.digest).await.unwrap().is_none(), "{name}");
        assert!(db.blob(&wrong.digest).await.unwrap().is_none(), "{name}");
        assert_eq!(count_chunks(db).await, units, "{name}: nothing left behind");

        assert!(db.delete_blob(&request.digest).await.unwrap(), "{name}");
        assert!(!db.delete_blob(&request.digest).await.unwrap(), "{name}");
        assert!(db.blob(&request.digest).await.unwrap().is_none(), "{name}");
        assert_eq!(
            count_chunks(db).await,
            units - stored_units(name),
            "{name}: content deleted"
        );
    }
}

/// Storage units one blob of the test occupies: 3 chunk rows on SQLite, 1 large object on PostgreSQL.
fn stored_units(backend: &str) -> i64 {
    if backend == "sqlite" {
        3
    } else {
        1
    }
}
