//! Users who logged in and their refresh tokens, in the original's `users` and `user_identifiers`
//! tables (JSON columns: `role_bindings`, `refresh_tokens` as `[{identifier, exp}]`, `identifier`).
//!
//! A refresh token is rotated in one transaction (the row locked on PostgreSQL, the writer lock
//! on SQLite): of two refreshes with the same token, exactly one succeeds.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::store::{Backend, DeliveryDb};
use crate::StoreError;

/// One refresh token of a user: a random identifier and its expiry (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub identifier: String,
    pub exp: i64,
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    /// The original's `[{name, origin}]`.
    pub role_bindings: Vec<Value>,
    /// `(type, identifier)` per identity the user logged in with.
    pub identifiers: Vec<(String, Value)>,
}

/// What a refresh-token rotation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The old token (if any) was removed, the new one (if any) stored; the user's role bindings.
    Done(Vec<Value>),
    NoSuchUser,
    /// The presented refresh token is not (or no longer) stored.
    UnknownToken,
}

fn corrupt(id: &str, what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        reason: format!("{what}: {error}"),
    }
}

impl DeliveryDb {
    /// `$n` as a JSON value: PostgreSQL's columns are `json`, SQLite's text.
    fn json_param(&self, n: usize) -> String {
        match self.backend() {
            Backend::Postgres => format!("CAST(${n} AS json)"),
            Backend::Sqlite => format!("${n}"),
        }
    }

    /// The user id of an identity (`type` and the SHA-1 of its normalised form), if known.
    pub async fn user_id_by_identifier(
        &self,
        idp_type: &str,
        digest: &str,
    ) -> Result<Option<String>, StoreError> {
        self.require_available()?;
        let row = sqlx::query(
            "SELECT CAST(user_id AS TEXT) AS user_id FROM user_identifiers \
             WHERE type = $1 AND identifier_normalised_digest = CAST($2 AS CHAR(40))",
        )
        .bind(idp_type.to_string())
        .bind(digest.to_string())
        .fetch_optional(&self.inner().pool)
        .await
        .map_err(|e| self.error(e))?;
        Ok(row
            .and_then(|row| row.try_get::<Option<String>, _>("user_id").ok().flatten())
            .map(|id| id.trim().to_string()))
    }

    /// Creates a user with one identity, or (the identity known) replaces its role bindings:
    /// memberships change, so each login binds roles anew. Returns the user's id.
    pub async fn upsert_user(
        &self,
        new_id: &str,
        idp_type: &str,
        digest: &str,
        identifier: &Value,
        role_bindings: &[Value],
    ) -> Result<String, StoreError> {
        self.require_available()?;
        let bindings = Value::Array(role_bindings.to_vec()).to_string();
        let _guard = self.write_guard().await;
        let mut transaction = self.inner().pool.begin().await.map_err(|e| self.error(e))?;
        let existing = sqlx::query(
            "SELECT CAST(user_id AS TEXT) AS user_id FROM user_identifiers \
             WHERE type = $1 AND identifier_normalised_digest = CAST($2 AS CHAR(40))",
        )
        .bind(idp_type.to_string())
        .bind(digest.to_string())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|e| self.error(e))?
        .and_then(|row| row.try_get::<Option<String>, _>("user_id").ok().flatten())
        .map(|id| id.trim().to_string());
        let id = match existing {
            Some(id) => {
                sqlx::query(&format!(
                    "UPDATE users SET role_bindings = {} WHERE id = CAST($2 AS CHAR(36))",
                    self.json_param(1)
                ))
                .bind(bindings)
                .bind(id.clone())
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.error(e))?;
                id
            }
            None => {
                sqlx::query(&format!(
                    "INSERT INTO users (id, role_bindings, refresh_tokens) VALUES ($1, {}, {})",
                    self.json_param(2),
                    self.json_param(3)
                ))
                .bind(new_id.to_string())
                .bind(bindings.clone())
                .bind("[]".to_string())
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.error(e))?;
                let inserted = sqlx::query(&format!(
                    "INSERT INTO user_identifiers (user_id, type, identifier_normalised_digest, identifier) \
                     VALUES ($1, $2, $3, {}) ON CONFLICT (type, identifier_normalised_digest) DO NOTHING",
                    self.json_param(4)
                ))
                .bind(new_id.to_string())
                .bind(idp_type.to_string())
                .bind(digest.to_string())
                .bind(identifier.to_string())
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected();
                if inserted == 0 {
                    // The same identity's first login ran at the same time and won: drop our
                    // user, bind the roles to the winner's.
                    transaction.rollback().await.map_err(|e| self.error(e))?;
                    drop(_guard);
                    let id = self
                        .user_id_by_identifier(idp_type, digest)
                        .await?
                        .ok_or_else(|| {
                            corrupt(new_id, "user_identifiers", "the identity vanished")
                        })?;
                    sqlx::query(&format!(
                        "UPDATE users SET role_bindings = {} WHERE id = CAST($2 AS CHAR(36))",
                        self.json_param(1)
                    ))
                    .bind(bindings)
                    .bind(id.clone())
                    .execute(&self.inner().pool)
                    .await
                    .map_err(|e| self.error(e))?;
                    return Ok(id);
                }
                new_id.to_string()
            }
        };
        transaction.commit().await.map_err(|e| self.error(e))?;
        Ok(id)
    }

    /// The user with its identities, if it exists.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.require_available()?;
        let Some(row) = sqlx::query(
            "SELECT CAST(role_bindings AS TEXT) AS role_bindings FROM users WHERE id = CAST($1 AS CHAR(36))",
        )
        .bind(id.to_string())
        .fetch_optional(&self.inner().pool)
        .await
        .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let role_bindings = parse_list(id, "role_bindings", &row)?;
        let rows = sqlx::query(
            "SELECT type, CAST(identifier AS TEXT) AS identifier FROM user_identifiers \
             WHERE user_id = $1 ORDER BY identifier_normalised_digest",
        )
        .bind(id.to_string())
        .fetch_all(&self.inner().pool)
        .await
        .map_err(|e| self.error(e))?;
        let mut identifiers = Vec::with_capacity(rows.len());
        for row in rows {
            let kind: String = row.try_get("type").map_err(|e| self.error(e))?;
            let text: Option<String> = row.try_get("identifier").map_err(|e| self.error(e))?;
            let value = match text {
                Some(text) => {
                    serde_json::from_str(&text).map_err(|e| corrupt(id, "identifier", e))?
                }
                None => Value::Null,
            };
            identifiers.push((kind, value));
        }
        Ok(Some(UserRecord {
            id: id.to_string(),
            role_bindings,
            identifiers,
        }))
    }

    /// In one transaction: removes the refresh token `old` (it must be stored, else
    /// [`Rotation::UnknownToken`]), adds `new`, and drops tokens expired at `now`.
    pub async fn rotate_refresh_token(
        &self,
        user_id: &str,
        old: Option<&str>,
        new: Option<RefreshToken>,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        self.require_available()?;
        let _guard = self.write_guard().await;
        let mut transaction = self.inner().pool.begin().await.map_err(|e| self.error(e))?;
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let Some(row) = sqlx::query(&format!(
            "SELECT CAST(role_bindings AS TEXT) AS role_bindings, \
             CAST(refresh_tokens AS TEXT) AS refresh_tokens FROM users WHERE id = CAST($1 AS CHAR(36)){lock}"
        ))
        .bind(user_id.to_string())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|e| self.error(e))?
        else {
            return Ok(Rotation::NoSuchUser);
        };
        let role_bindings = parse_list(user_id, "role_bindings", &row)?;
        let mut tokens: Vec<RefreshToken> = parse_list(user_id, "refresh_tokens", &row)?
            .into_iter()
            .filter_map(|token| serde_json::from_value(token).ok())
            .collect();
        if let Some(old) = old {
            let before = tokens.len();
            tokens.retain(|token| token.identifier != old);
            if tokens.len() == before {
                return Ok(Rotation::UnknownToken);
            }
        }
        tokens.extend(new);
        tokens.retain(|token| token.exp > now);
        let text =
            serde_json::to_string(&tokens).map_err(|e| corrupt(user_id, "refresh_tokens", e))?;
        sqlx::query(&format!(
            "UPDATE users SET refresh_tokens = {} WHERE id = CAST($2 AS CHAR(36))",
            self.json_param(1)
        ))
        .bind(text)
        .bind(user_id.to_string())
        .execute(&mut *transaction)
        .await
        .map_err(|e| self.error(e))?;
        transaction.commit().await.map_err(|e| self.error(e))?;
        Ok(Rotation::Done(role_bindings))
    }
}

fn parse_list(id: &str, column: &str, row: &sqlx::any::AnyRow) -> Result<Vec<Value>, StoreError> {
    let text: Option<String> = row.try_get(column).map_err(|e| corrupt(id, column, e))?;
    match text.as_deref().map(str::trim) {
        None | Some("") | Some("null") => Ok(Vec::new()),
        Some(text) => match serde_json::from_str(text).map_err(|e| corrupt(id, column, e))? {
            Value::Array(items) => Ok(items),
            _ => Err(corrupt(id, column, "not a list")),
        },
    }
}
