//! Backlog items: work for an extension (scan this artefact), in odg's own table
//! `odg_backlog_items` where the original keeps Kubernetes custom resources. The semantics are
//! the original's: one item per (service, artefact), named as the original names the resource; a
//! second request for the same artefact only raises its priority; an extension claims the
//! highest-priority, oldest unclaimed item of its service. A claim is a lease: one older than the
//! lease counts as released (the original's backlog controller removes such claims after 30
//! minutes; here the next claim does, so no controller is needed).
//!
//! The item's spec is stored as the JSON the caller sent (the resource keeps unknown fields, so
//! does the row); its priority and timestamp are copied into columns for the claim order.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::metrics::{self, operation};
use crate::store::{Backend, DeliveryDb};
use crate::StoreError;

/// An item as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogItem {
    pub name: String,
    pub uid: String,
    pub service: String,
    pub spec: Value,
    /// When the item was first created (RFC 3339, UTC).
    pub creation_timestamp: String,
    /// The original's `claimed` label: `None` never claimed, `true` claimed, `false` released.
    pub claimed: Option<bool>,
    /// Who holds the claim and since when, while claimed.
    pub claim: Option<BacklogClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogClaim {
    pub claimed_by: String,
    /// RFC 3339, UTC, fixed width (compared as text for the lease).
    pub claimed_at: String,
}

/// A new item's columns.
#[derive(Debug, Clone)]
pub struct NewBacklogItem {
    pub name: String,
    pub uid: String,
    pub service: String,
    pub priority: i64,
    pub timestamp: String,
    pub spec: Value,
    pub creation_timestamp: String,
}

/// What creating an item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacklogCreation {
    Created,
    /// It existed with a lower priority, now raised.
    Raised,
    /// It existed with the same or a higher priority.
    Unchanged,
}

const ITEM_COLUMNS: &str =
    "name, uid, service, spec, creation_timestamp, claimed, claimed_by, claimed_at";

/// Items of one service listed at most (a list is one answer; a larger backlog is a sign of a
/// stuck extension, and the original's list is unbounded only because Kubernetes pages it).
pub const MAX_LISTED_BACKLOG_ITEMS: i64 = 10_000;

fn decode_item(row: &AnyRow) -> Result<BacklogItem, StoreError> {
    let text = |column: &str| -> Result<Option<String>, StoreError> {
        row.try_get::<Option<String>, _>(column)
            .map_err(|error| StoreError::Database(format!("reading a backlog item: {error}")))
    };
    let name = text("name")?.unwrap_or_default();
    let spec_text = text("spec")?.unwrap_or_default();
    let spec = serde_json::from_str(&spec_text).map_err(|error| StoreError::Corrupt {
        id: name.clone(),
        reason: format!("spec: {error}"),
    })?;
    let claimed = text("claimed")?.map(|label| label == "True");
    let claim = match (claimed, text("claimed_by")?, text("claimed_at")?) {
        (Some(true), Some(claimed_by), Some(claimed_at)) => Some(BacklogClaim {
            claimed_by,
            claimed_at,
        }),
        _ => None,
    };
    Ok(BacklogItem {
        uid: text("uid")?.unwrap_or_default(),
        service: text("service")?.unwrap_or_default(),
        creation_timestamp: text("creation_timestamp")?.unwrap_or_default(),
        name,
        spec,
        claimed,
        claim,
    })
}

impl DeliveryDb {
    /// The items of `service`, by name (as Kubernetes lists them).
    pub async fn backlog_items(&self, service: &str) -> Result<Vec<BacklogItem>, StoreError> {
        let started = std::time::Instant::now();
        let result = async {
            self.require_available()?;
            let rows = sqlx::query(&format!(
                "SELECT {ITEM_COLUMNS} FROM odg_backlog_items WHERE service = $1 ORDER BY name LIMIT $2"
            ))
            .bind(service.to_string())
            .bind(MAX_LISTED_BACKLOG_ITEMS)
            .fetch_all(&self.inner().pool)
            .await
            .map_err(|e| self.error(e))?;
            metrics::rows_read(operation::BACKLOG, rows.len());
            rows.iter().map(decode_item).collect()
        }
        .await;
        metrics::record(operation::BACKLOG, started, &result);
        result
    }

    /// Creates each item, or raises the priority of an existing one of the same name (its spec's
    /// `priority` too) when the new one is higher; one transaction.
    pub async fn create_backlog_items(
        &self,
        items: &[NewBacklogItem],
    ) -> Result<Vec<BacklogCreation>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.create_backlog_items_inner(items).await;
        metrics::record(operation::BACKLOG, started, &result);
        result
    }

    async fn create_backlog_items_inner(
        &self,
        items: &[NewBacklogItem],
    ) -> Result<Vec<BacklogCreation>, StoreError> {
        self.require_available()?;
        let _guard = self.write_guard().await;
        let mut transaction = self.inner().pool.begin().await.map_err(|e| self.error(e))?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let inserted = sqlx::query(
                "INSERT INTO odg_backlog_items (name, uid, service, priority, item_timestamp, spec, creation_timestamp) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
            )
            .bind(item.name.clone())
            .bind(item.uid.clone())
            .bind(item.service.clone())
            .bind(item.priority)
            .bind(item.timestamp.clone())
            .bind(item.spec.to_string())
            .bind(item.creation_timestamp.clone())
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected();
            if inserted == 1 {
                outcomes.push(BacklogCreation::Created);
                continue;
            }
            let existing =
                sqlx::query("SELECT priority, spec FROM odg_backlog_items WHERE name = $1")
                    .bind(item.name.clone())
                    .fetch_optional(&mut *transaction)
                    .await
                    .map_err(|e| self.error(e))?;
            let Some(existing) = existing else {
                // deleted between the insert and the read: the original reports this as an error too
                return Err(StoreError::Database(format!(
                    "backlog item {} conflicted but could not be read back",
                    item.name
                )));
            };
            let old_priority: i64 = existing.try_get("priority").map_err(|error| {
                StoreError::Database(format!("reading a backlog item: {error}"))
            })?;
            if old_priority >= item.priority {
                outcomes.push(BacklogCreation::Unchanged);
                continue;
            }
            let spec_text: String = existing.try_get("spec").map_err(|error| {
                StoreError::Database(format!("reading a backlog item: {error}"))
            })?;
            let mut spec: Value =
                serde_json::from_str(&spec_text).map_err(|error| StoreError::Corrupt {
                    id: item.name.clone(),
                    reason: format!("spec: {error}"),
                })?;
            if let Some(object) = spec.as_object_mut() {
                object.insert("priority".into(), Value::from(item.priority));
            }
            // `priority < $1`: a concurrent raise to a higher priority wins
            sqlx::query(
                "UPDATE odg_backlog_items SET priority = $1, spec = $2 WHERE name = $3 AND priority < $1",
            )
            .bind(item.priority)
            .bind(spec.to_string())
            .bind(item.name.clone())
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.error(e))?;
            outcomes.push(BacklogCreation::Raised);
        }
        transaction.commit().await.map_err(|e| self.error(e))?;
        metrics::rows_written(
            "insert",
            outcomes
                .iter()
                .filter(|o| **o == BacklogCreation::Created)
                .count() as u64,
        );
        Ok(outcomes)
    }

    /// Replaces the spec of the item `name` (its priority and timestamp with it); `false` when
    /// there is no such item (the original ignores it: it was processed already).
    pub async fn update_backlog_item(
        &self,
        name: &str,
        spec: &Value,
        priority: i64,
        timestamp: &str,
    ) -> Result<bool, StoreError> {
        let started = std::time::Instant::now();
        let result = async {
            self.require_available()?;
            let _guard = self.write_guard().await;
            let updated = sqlx::query(
                "UPDATE odg_backlog_items SET spec = $1, priority = $2, item_timestamp = $3 WHERE name = $4",
            )
            .bind(spec.to_string())
            .bind(priority)
            .bind(timestamp.to_string())
            .bind(name.to_string())
            .execute(&self.inner().pool)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected();
            Ok(updated > 0)
        }
        .await;
        metrics::record(operation::BACKLOG, started, &result);
        result
    }

    /// Deletes the items named (absent ones are fine); how many there were.
    pub async fn delete_backlog_items(&self, names: &[String]) -> Result<u64, StoreError> {
        let started = std::time::Instant::now();
        let result = async {
            self.require_available()?;
            let _guard = self.write_guard().await;
            let mut deleted = 0;
            for chunk in names.chunks(500) {
                let placeholders: Vec<String> =
                    (1..=chunk.len()).map(|n| format!("${n}")).collect();
                let sql = format!(
                    "DELETE FROM odg_backlog_items WHERE name IN ({})",
                    placeholders.join(", ")
                );
                let mut statement = sqlx::query(&sql);
                for name in chunk {
                    statement = statement.bind(name.clone());
                }
                deleted += statement
                    .execute(&self.inner().pool)
                    .await
                    .map_err(|e| self.error(e))?
                    .rows_affected();
            }
            metrics::rows_written("delete", deleted);
            Ok(deleted)
        }
        .await;
        metrics::record(operation::BACKLOG, started, &result);
        result
    }

    /// Claims the next item of `service` for `claimed_by`: the highest priority, then the oldest
    /// timestamp, among those unclaimed or claimed before `lease_expired_before` (an RFC 3339
    /// UTC time in the format of `claimed_at`). `None` when there is none. Two claims never get
    /// the same item: the row is locked (PostgreSQL, skipping rows others hold) or the writer
    /// lock is held (SQLite).
    pub async fn claim_backlog_item(
        &self,
        service: &str,
        claimed_by: &str,
        claimed_at: &str,
        lease_expired_before: &str,
    ) -> Result<Option<BacklogItem>, StoreError> {
        let started = std::time::Instant::now();
        let result = async {
            self.require_available()?;
            let _guard = self.write_guard().await;
            let mut transaction = self.inner().pool.begin().await.map_err(|e| self.error(e))?;
            let lock = match self.backend() {
                Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                Backend::Sqlite => "",
            };
            let next = sqlx::query(&format!(
                "SELECT name FROM odg_backlog_items WHERE service = $1 \
                 AND (claimed IS NULL OR claimed <> 'True' OR claimed_at IS NULL OR claimed_at < $2) \
                 ORDER BY priority DESC, item_timestamp, name LIMIT 1{lock}"
            ))
            .bind(service.to_string())
            .bind(lease_expired_before.to_string())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(|e| self.error(e))?;
            let Some(next) = next else {
                return Ok(None);
            };
            let name: String = next
                .try_get("name")
                .map_err(|error| StoreError::Database(format!("reading a backlog item: {error}")))?;
            sqlx::query(
                "UPDATE odg_backlog_items SET claimed = 'True', claimed_by = $1, claimed_at = $2 WHERE name = $3",
            )
            .bind(claimed_by.to_string())
            .bind(claimed_at.to_string())
            .bind(name.clone())
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.error(e))?;
            let row = sqlx::query(&format!(
                "SELECT {ITEM_COLUMNS} FROM odg_backlog_items WHERE name = $1"
            ))
            .bind(name)
            .fetch_one(&mut *transaction)
            .await
            .map_err(|e| self.error(e))?;
            let item = decode_item(&row)?;
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(Some(item))
        }
        .await;
        metrics::record(operation::BACKLOG, started, &result);
        result
    }

    /// Releases the claim on `name` (the original's `remove_claim`); `false` when there is no
    /// such item.
    pub async fn release_backlog_claim(&self, name: &str) -> Result<bool, StoreError> {
        let started = std::time::Instant::now();
        let result = async {
            self.require_available()?;
            let _guard = self.write_guard().await;
            let updated = sqlx::query(
                "UPDATE odg_backlog_items SET claimed = 'False', claimed_by = NULL, claimed_at = NULL WHERE name = $1",
            )
            .bind(name.to_string())
            .execute(&self.inner().pool)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected();
            Ok(updated > 0)
        }
        .await;
        metrics::record(operation::BACKLOG, started, &result);
        result
    }
}
