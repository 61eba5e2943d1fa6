//! The blob store (`/blob`): content-addressed blobs in the original's `blob_store` table, their
//! content where the original keeps it on PostgreSQL (a large object, `ref` = its oid) so that odg
//! and the original can share a database, and in fixed-size rows of `odg_blob_chunk` on SQLite.
//!
//! Memory stays bounded in both directions: an upload is hashed and written in chunks of
//! [`BLOB_CHUNK_BYTES`] as it arrives, a download reads one chunk per round trip. An upload is
//! all or nothing: on PostgreSQL the large object and the row are written in one transaction (an
//! aborted, truncated, oversized or mismatching upload rolls back, the large object with it); on
//! SQLite the body is spooled to an unlinked file beside the database first and copied in one short
//! transaction once its digest is verified, so a slow client never holds SQLite's one write lock.

use std::fmt::Display;
use std::io::SeekFrom;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, FixedOffset, Utc};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::metrics::{self, operation};
use crate::store::{Backend, DeliveryDb, SqlType};
use crate::StoreError;

/// Bytes per write and per read round trip (and per `odg_blob_chunk` row on SQLite): large enough
/// that a 1 GiB blob takes 4,096 round trips, small enough that a few hundred downloads at once
/// hold well under a GiB.
pub const BLOB_CHUNK_BYTES: usize = 256 * 1024;

/// The largest blob the schema can describe: `blob_store.size` is the original's `integer`.
pub const MAX_BLOB_BYTES: u64 = i32::MAX as u64;

/// The hash algorithms blobs may be addressed by, with their hex digest length (the original's
/// `Algorithm` enum has only this one).
pub const BLOB_DIGEST_ALGORITHMS: &[(&str, usize)] = &[("sha256", 64)];

/// A stored blob's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    /// `sha256:<lower-case hex>`.
    pub digest: String,
    pub creation_date: Option<DateTime<FixedOffset>>,
    pub size: u64,
    pub mime_type: String,
    /// Where the content is: the large object's oid (PostgreSQL) or the chunks' key (SQLite).
    pub(crate) reference: String,
}

/// What an upload claims: the checked digest (see [`sanitise_blob_digest`]) and how much may come.
#[derive(Debug, Clone)]
pub struct BlobUpload {
    pub digest: String,
    pub mime_type: String,
    /// More bytes than this fail with [`StoreError::BlobTooLarge`] (at most [`MAX_BLOB_BYTES`]).
    pub max_bytes: u64,
    /// The longest wait for the next part of the body; longer fails the upload (a stalled client
    /// must not hold a database transaction open).
    pub idle_timeout: Duration,
}

/// The original's digest check: `algorithm:hexdigest`, a supported algorithm, hex of the
/// algorithm's length; answered in lower case.
pub fn sanitise_blob_digest(digest: &str) -> Result<String, StoreError> {
    let digest = digest.trim();
    let invalid = |message: String| StoreError::InvalidInput(message);
    let Some((algorithm, hex)) = digest.split_once(':').filter(|(_, hex)| !hex.contains(':'))
    else {
        return Err(invalid(
            "the digest must be in the form \"algorithm:hexdigest\"".into(),
        ));
    };
    let algorithm = algorithm.to_ascii_lowercase();
    let Some((_, length)) = BLOB_DIGEST_ALGORITHMS
        .iter()
        .find(|(name, _)| *name == algorithm)
    else {
        let supported: Vec<&str> = BLOB_DIGEST_ALGORITHMS.iter().map(|(n, _)| *n).collect();
        return Err(invalid(format!(
            "hash algorithm {algorithm:?} is not supported; supported: {}",
            supported.join(", ")
        )));
    };
    if hex.is_empty() || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid(
            "the hex digest must hold only hexadecimal characters (0-9, a-f, A-F)".into(),
        ));
    }
    if hex.len() != *length {
        return Err(invalid(format!(
            "invalid hex digest length for {algorithm}: expected {length} characters, got {}",
            hex.len()
        )));
    }
    Ok(format!("{algorithm}:{}", hex.to_ascii_lowercase()))
}

/// Reads PostgreSQL's text form of `timestamp with time zone` (`2025-03-04 10:15:00.123+00`) and
/// the RFC 3339 text odg writes into SQLite.
fn parse_creation_date(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
}

/// Where the written content goes until the upload is verified.
enum Sink<'c> {
    /// A transaction holding the new large object.
    LargeObject {
        transaction: Transaction<'c, Any>,
        oid: i64,
        written: u64,
    },
    /// An unlinked temporary file, copied into the database once verified.
    Spool { file: tokio::fs::File },
}

impl DeliveryDb {
    /// The row of `digest` (sanitised), if stored.
    pub async fn blob(&self, digest: &str) -> Result<Option<BlobRecord>, StoreError> {
        let started = Instant::now();
        let result = self.blob_inner(digest).await;
        metrics::record(operation::BLOB_READ, started, &result);
        result
    }

    async fn blob_inner(&self, digest: &str) -> Result<Option<BlobRecord>, StoreError> {
        self.require_available()?;
        let row = sqlx::query(
            "SELECT CAST(digest AS TEXT) AS digest, CAST(creation_date AS TEXT) AS creation_date, \
             CAST(size AS BIGINT) AS size, CAST(mime_type AS TEXT) AS mime_type, \
             CAST(ref AS TEXT) AS ref FROM blob_store WHERE digest = $1",
        )
        .bind(digest.to_string())
        .fetch_optional(&self.inner().pool)
        .await
        .map_err(|e| self.error(e))?;
        row.map(|row| self.blob_record(&row)).transpose()
    }

    fn blob_record(&self, row: &AnyRow) -> Result<BlobRecord, StoreError> {
        let digest: String = row.try_get("digest").map_err(|e| self.error(e))?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            id: digest.clone(),
            reason: reason.into(),
        };
        let creation_date: Option<String> =
            row.try_get("creation_date").map_err(|e| self.error(e))?;
        let size: Option<i64> = row.try_get("size").map_err(|e| self.error(e))?;
        let mime_type: Option<String> = row.try_get("mime_type").map_err(|e| self.error(e))?;
        let reference: Option<String> = row.try_get("ref").map_err(|e| self.error(e))?;
        Ok(BlobRecord {
            creation_date: creation_date.as_deref().and_then(parse_creation_date),
            size: size
                .and_then(|size| u64::try_from(size).ok())
                .ok_or_else(|| corrupt("the blob's size is missing or negative"))?,
            mime_type: mime_type.unwrap_or_default(),
            reference: reference.ok_or_else(|| corrupt("the blob has no ref"))?,
            digest: digest.clone(),
        })
    }

    /// The bytes `start..end` of `blob`, one round trip per [`BLOB_CHUNK_BYTES`], each on a pooled
    /// connection taken for that round trip only (a slow reader holds no connection). A blob
    /// deleted while it is read ends the stream with an error.
    pub fn blob_content(
        &self,
        blob: &BlobRecord,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
        let db = self.clone();
        let reference = blob.reference.clone();
        let end = end.min(blob.size);
        futures::stream::try_unfold(start, move |position| {
            let db = db.clone();
            let reference = reference.clone();
            async move {
                if position >= end {
                    return Ok(None);
                }
                let chunk = db.read_blob_chunk(&reference, position, end).await?;
                let next = position + chunk.len() as u64;
                Ok(Some((chunk, next)))
            }
        })
    }

    /// One round trip's bytes from `position` (up to a chunk, never past `end` nor, on SQLite,
    /// past the row holding `position`).
    async fn read_blob_chunk(
        &self,
        reference: &str,
        position: u64,
        end: u64,
    ) -> Result<Bytes, StoreError> {
        self.require_available()?;
        let chunk = BLOB_CHUNK_BYTES as u64;
        let (sql, key, offset, length) = match self.backend() {
            Backend::Postgres => {
                let oid: i64 = reference.parse().map_err(|_| StoreError::Corrupt {
                    id: reference.into(),
                    reason: "the blob's ref is not a large object's oid".into(),
                })?;
                let length = (end - position).min(chunk);
                (
                    "SELECT lo_get(CAST($1 AS oid), $2, CAST($3 AS INTEGER)) AS data",
                    BlobKey::Oid(oid),
                    position as i64,
                    length as i64,
                )
            }
            Backend::Sqlite => {
                let within = position % chunk;
                let length = (end - position).min(chunk - within);
                (
                    "SELECT substr(data, $2 + 1, $3) AS data FROM odg_blob_chunk \
                     WHERE ref = $1 AND seq = $4",
                    BlobKey::Chunk(reference.to_string(), (position / chunk) as i64),
                    within as i64,
                    length as i64,
                )
            }
        };
        let query = sqlx::query(sql);
        let query = match &key {
            BlobKey::Oid(oid) => query.bind(*oid).bind(offset).bind(length),
            BlobKey::Chunk(reference, seq) => query
                .bind(reference.clone())
                .bind(offset)
                .bind(length)
                .bind(*seq),
        };
        let row = query
            .fetch_optional(&self.inner().pool)
            .await
            .map_err(|e| self.error(e))?;
        let data: Vec<u8> = match row {
            Some(row) => row.try_get("data").map_err(|e| self.error(e))?,
            None => Vec::new(),
        };
        if data.len() as i64 != length {
            return Err(StoreError::Corrupt {
                id: reference.to_string(),
                reason: format!(
                    "the blob's content ended at byte {} of {end} (deleted while read?)",
                    position + data.len() as u64
                ),
            });
        }
        Ok(Bytes::from(data))
    }

    /// Stores `body` as the blob `upload.digest` and returns its row: hashed while it streams,
    /// refused past `upload.max_bytes` ([`StoreError::BlobTooLarge`], without reading further),
    /// refused when its digest differs ([`StoreError::DigestMismatch`]) or the digest is stored
    /// already ([`StoreError::BlobExists`]). Nothing is left behind by a failed upload.
    pub async fn put_blob<S, E>(
        &self,
        upload: &BlobUpload,
        body: S,
    ) -> Result<BlobRecord, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: Display,
    {
        let started = Instant::now();
        let result = self.put_blob_inner(upload, body).await;
        metrics::record(operation::BLOB_WRITE, started, &result);
        result
    }

    async fn put_blob_inner<S, E>(
        &self,
        upload: &BlobUpload,
        mut body: S,
    ) -> Result<BlobRecord, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: Display,
    {
        self.require_available()?;
        if self.blob_inner(&upload.digest).await?.is_some() {
            return Err(StoreError::BlobExists {
                digest: upload.digest.clone(),
            });
        }
        let max_bytes = upload.max_bytes.min(MAX_BLOB_BYTES);
        let mut sink = match self.backend() {
            Backend::Postgres => {
                let mut transaction = self.inner().pool.begin().await.map_err(|e| self.error(e))?;
                let oid: i64 = sqlx::query("SELECT CAST(lo_create(0) AS BIGINT) AS oid")
                    .fetch_one(&mut *transaction)
                    .await
                    .and_then(|row| row.try_get("oid"))
                    .map_err(|e| self.error(e))?;
                Sink::LargeObject {
                    transaction,
                    oid,
                    written: 0,
                }
            }
            Backend::Sqlite => {
                let file = spool_file(&self.inner().spool_directory).await?;
                Sink::Spool { file }
            }
        };
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut pending = BytesMut::new();
        loop {
            let next = tokio::time::timeout(upload.idle_timeout, body.next())
                .await
                .map_err(|_| {
                    StoreError::UploadAborted(format!(
                        "no part of the body arrived within {:?}",
                        upload.idle_timeout
                    ))
                })?;
            let Some(part) = next else { break };
            let part = part.map_err(|error| StoreError::UploadAborted(error.to_string()))?;
            size += part.len() as u64;
            if size > max_bytes {
                return Err(StoreError::BlobTooLarge { limit: max_bytes });
            }
            hasher.update(&part);
            pending.extend_from_slice(&part);
            while pending.len() >= BLOB_CHUNK_BYTES {
                let chunk = pending.split_to(BLOB_CHUNK_BYTES).freeze();
                self.write_to_sink(&mut sink, chunk).await?;
            }
        }
        if !pending.is_empty() {
            self.write_to_sink(&mut sink, pending.freeze()).await?;
        }
        let algorithm = upload.digest.split(':').next().unwrap_or("sha256");
        let actual = format!("{algorithm}:{}", hex::encode(hasher.finalize()));
        if actual != upload.digest {
            return Err(StoreError::DigestMismatch {
                expected: upload.digest.clone(),
                actual,
            });
        }
        let record = BlobRecord {
            digest: actual,
            creation_date: Some(Utc::now().fixed_offset()),
            size,
            mime_type: upload.mime_type.clone(),
            reference: String::new(),
        };
        match sink {
            Sink::LargeObject {
                mut transaction,
                oid,
                ..
            } => {
                let record = BlobRecord {
                    reference: oid.to_string(),
                    ..record
                };
                self.insert_blob_row(&mut transaction, &record).await?;
                transaction.commit().await.map_err(|e| self.error(e))?;
                Ok(record)
            }
            Sink::Spool { file } => self.copy_spool(file, record).await,
        }
    }

    async fn write_to_sink(&self, sink: &mut Sink<'_>, chunk: Bytes) -> Result<(), StoreError> {
        match sink {
            Sink::LargeObject {
                transaction,
                oid,
                written,
            } => {
                sqlx::query("SELECT lo_put(CAST($1 AS oid), $2, $3)")
                    .bind(*oid)
                    .bind(*written as i64)
                    .bind(chunk.to_vec())
                    .execute(&mut **transaction)
                    .await
                    .map_err(|e| self.error(e))?;
                *written += chunk.len() as u64;
            }
            Sink::Spool { file } => file
                .write_all(&chunk)
                .await
                .map_err(|error| StoreError::Database(format!("spool file: {error}")))?,
        }
        Ok(())
    }

    /// The row; a digest stored meanwhile by a concurrent upload is [`StoreError::BlobExists`].
    async fn insert_blob_row(
        &self,
        transaction: &mut Transaction<'_, Any>,
        record: &BlobRecord,
    ) -> Result<(), StoreError> {
        let backend = self.backend();
        let inserted = sqlx::query(&format!(
            "INSERT INTO blob_store (digest, creation_date, size, mime_type, ref) \
             VALUES ($1, {}, CAST($3 AS INTEGER), $4, $5) ON CONFLICT (digest) DO NOTHING",
            backend.param(2, SqlType::Timestamp)
        ))
        .bind(record.digest.clone())
        .bind(
            record
                .creation_date
                .map(|date| date.to_rfc3339())
                .unwrap_or_default(),
        )
        .bind(record.size as i64)
        .bind(record.mime_type.clone())
        .bind(record.reference.clone())
        .execute(&mut **transaction)
        .await
        .map_err(|e| self.error(e))?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::BlobExists {
                digest: record.digest.clone(),
            });
        }
        Ok(())
    }

    /// SQLite: the verified spool file into `odg_blob_chunk` and the row, in one transaction.
    async fn copy_spool(
        &self,
        mut file: tokio::fs::File,
        record: BlobRecord,
    ) -> Result<BlobRecord, StoreError> {
        let spool_error =
            |error: std::io::Error| StoreError::Database(format!("spool file: {error}"));
        file.flush().await.map_err(spool_error)?;
        file.seek(SeekFrom::Start(0)).await.map_err(spool_error)?;
        let record = BlobRecord {
            reference: random_reference(),
            ..record
        };
        let _guard = self.write_guard().await;
        let mut transaction = self.inner().pool.begin().await.map_err(|e| self.error(e))?;
        self.insert_blob_row(&mut transaction, &record).await?;
        let mut buffer = vec![0u8; BLOB_CHUNK_BYTES];
        let mut seq: i64 = 0;
        loop {
            let mut filled = 0;
            while filled < buffer.len() {
                let read = file
                    .read(&mut buffer[filled..])
                    .await
                    .map_err(spool_error)?;
                if read == 0 {
                    break;
                }
                filled += read;
            }
            if filled == 0 {
                break;
            }
            sqlx::query("INSERT INTO odg_blob_chunk (ref, seq, data) VALUES ($1, $2, $3)")
                .bind(record.reference.clone())
                .bind(seq)
                .bind(buffer[..filled].to_vec())
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.error(e))?;
            seq += 1;
            if filled < buffer.len() {
                break;
            }
        }
        transaction.commit().await.map_err(|e| self.error(e))?;
        Ok(record)
    }

    /// Deletes the blob `digest` (row and content in one transaction); whether it was stored.
    pub async fn delete_blob(&self, digest: &str) -> Result<bool, StoreError> {
        let started = Instant::now();
        let result = self.delete_blob_inner(digest).await;
        metrics::record(operation::BLOB_DELETE, started, &result);
        result
    }

    async fn delete_blob_inner(&self, digest: &str) -> Result<bool, StoreError> {
        self.require_available()?;
        let _guard = self.write_guard().await;
        let mut transaction = self.inner().pool.begin().await.map_err(|e| self.error(e))?;
        let row = sqlx::query(
            "DELETE FROM blob_store WHERE digest = $1 RETURNING CAST(ref AS TEXT) AS ref",
        )
        .bind(digest.to_string())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|e| self.error(e))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let reference: Option<String> = row.try_get("ref").map_err(|e| self.error(e))?;
        if let Some(reference) = reference {
            match self.backend() {
                Backend::Postgres => {
                    // Only a large object that exists: a row whose object is gone is deleted all
                    // the same (the original answers 500 and keeps such a row for ever).
                    if let Ok(oid) = reference.parse::<i64>() {
                        sqlx::query(
                            "SELECT CAST(lo_unlink(oid) AS BIGINT) AS unlinked FROM pg_largeobject_metadata \
                             WHERE oid = CAST($1 AS oid)",
                        )
                        .bind(oid)
                        .fetch_optional(&mut *transaction)
                        .await
                        .map_err(|e| self.error(e))?;
                    }
                }
                Backend::Sqlite => {
                    sqlx::query("DELETE FROM odg_blob_chunk WHERE ref = $1")
                        .bind(reference)
                        .execute(&mut *transaction)
                        .await
                        .map_err(|e| self.error(e))?;
                }
            }
        }
        transaction.commit().await.map_err(|e| self.error(e))?;
        Ok(true)
    }
}

impl DeliveryDb {
    /// Large objects (PostgreSQL) or chunk rows (SQLite) stored now: tests check with it that
    /// failed uploads leave no content behind.
    #[doc(hidden)]
    pub async fn blob_storage_units(&self) -> Result<i64, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => "SELECT COUNT(*) AS n FROM pg_largeobject_metadata",
            Backend::Sqlite => "SELECT COUNT(*) AS n FROM odg_blob_chunk",
        };
        let row = sqlx::query(sql)
            .fetch_one(&self.inner().pool)
            .await
            .map_err(|e| self.error(e))?;
        row.try_get("n").map_err(|e| self.error(e))
    }
}

/// How a chunk read addresses the content.
enum BlobKey {
    Oid(i64),
    Chunk(String, i64),
}

/// A fresh key for a blob's chunks (not the digest: a blob deleted and stored again while an
/// old download still reads gets new chunks, never a mix of both).
fn random_reference() -> String {
    let bytes: [u8; 16] = rand::random();
    format!("odg-chunks-{}", hex::encode(bytes))
}

/// A new file in `directory`, unlinked at once: it lives as long as the handle, so a failed upload
/// leaves nothing (only a crash between the two calls would leave an empty file).
async fn spool_file(directory: &Path) -> Result<tokio::fs::File, StoreError> {
    let path = directory.join(format!(".odg-blob-upload-{}", random_reference()));
    let spool_error = |error: std::io::Error| StoreError::Database(format!("spool file: {error}"));
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .await
        .map_err(spool_error)?;
    tokio::fs::remove_file(&path).await.map_err(spool_error)?;
    Ok(file)
}

/// Where SQLite uploads are spooled: beside the database file (same file system, same quota),
/// else the system's temporary directory.
pub(crate) fn spool_directory(sqlite_path: Option<&str>) -> std::path::PathBuf {
    sqlite_path
        .and_then(|path| Path::new(path).parent())
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_as_the_original_checks_them() {
        let hex = "A".repeat(64);
        assert_eq!(
            sanitise_blob_digest(&format!(" sha256:{hex} ")).unwrap(),
            format!("sha256:{}", "a".repeat(64))
        );
        for bad in [
            "sha256",
            "sha256:a:b",
            &format!("md5:{hex}"),
            "sha256:xyz",
            "sha256:abcd",
            "sha256:",
        ] {
            let error = sanitise_blob_digest(bad).unwrap_err();
            assert_eq!(error.kind(), crate::StoreErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn creation_dates_parse_in_both_backends_forms() {
        assert!(parse_creation_date("2025-03-04 10:15:00.123+00").is_some());
        assert!(parse_creation_date("2025-03-04 10:15:00+02").is_some());
        assert!(parse_creation_date("2025-03-04T10:15:00.123456+00:00").is_some());
        assert!(parse_creation_date("yesterday").is_none());
    }
}
