//! The search of `POST /artefacts/metadata/query/by-search-expression` as SQL: a condition tree
//! over the original's columns and JSON fields, a sort of the original's sort fields, seek
//! pagination by a cursor (a row value comparison), one page per statement. One dialect for
//! both backends except JSON access and time comparison, which differ: PostgreSQL reads its
//! `json` columns with `->`/`->>` and compares `timestamptz`, SQLite uses `json_extract` and
//! `julianday` (both parse ISO 8601 with offsets).
//!
//! Every value the caller gives is a bound parameter (JSON keys too); column names come only from
//! the fixed list in [`Attr::column`]. Alternatives are balanced trees of `OR`s (SQLite's depth
//! limit), and a statement binding more than [`MAX_PARAMETERS_PER_STATEMENT`] values is refused.

use std::time::Instant;

use crate::metrics::{self, operation};
use crate::query::{SqlBuilder, MAX_PARAMETERS_PER_STATEMENT};
use crate::store::{Backend, DeliveryDb, StoredMetadata};
use crate::StoreError;

/// What a condition reads: a column of `artefact_metadata`, a key of `meta`, or a path in `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Column(&'static str),
    Meta(String),
    Data(Vec<String>),
}

/// The columns a search may name (the original's `_FIELD_TO_COL` targets).
const COLUMNS: [&str; 10] = [
    "id",
    "type",
    "datasource",
    "artefact_kind",
    "artefact_name",
    "artefact_version",
    "artefact_type",
    "component_name",
    "component_version",
    "data_key",
];

impl Attr {
    /// A column by name, if it is one a search may read.
    pub fn column(name: &str) -> Option<Attr> {
        COLUMNS
            .iter()
            .find(|column| **column == name)
            .map(|column| Attr::Column(column))
    }
}

/// Text comparisons (`Like`: SQL `LIKE` with `\` as escape, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

impl TextOp {
    fn sql(self) -> &'static str {
        match self {
            TextOp::Eq => "=",
            TextOp::Ne => "<>",
            TextOp::Lt => "<",
            TextOp::Le => "<=",
            TextOp::Gt => ">",
            TextOp::Ge => ">=",
            TextOp::Like => "LIKE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    True,
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    /// The attribute as text compared with `value`.
    Text {
        attr: Attr,
        op: TextOp,
        value: String,
    },
    In {
        attr: Attr,
        values: Vec<String>,
    },
    /// The attribute read as a point in time, compared with `value` (ISO 8601, checked by the
    /// caller); `op` is `Ge` or `Le` (anything else reads as `Le`).
    Time {
        attr: Attr,
        op: TextOp,
        value: String,
    },
    /// The finding's severity as its categorisation value (`cases`: type, severity id in upper
    /// case, value; 0 for anything else) compared with `value`.
    Severity {
        cases: Vec<(String, String, i64)>,
        op: TextOp,
        value: i64,
    },
    /// The attribute is null or empty.
    Blank(Attr),
}

/// The original's sort fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreationDate,
    LastUpdate,
    ComponentName,
    ComponentVersion,
    Type,
    Id,
}

impl SortField {
    pub fn parse(name: &str) -> Option<SortField> {
        Some(match name {
            "meta.creation_date" => SortField::CreationDate,
            "meta.last_update" => SortField::LastUpdate,
            "ocm.name" => SortField::ComponentName,
            "ocm.version" => SortField::ComponentVersion,
            "type" => SortField::Type,
            "id" => SortField::Id,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SortField::CreationDate => "meta.creation_date",
            SortField::LastUpdate => "meta.last_update",
            SortField::ComponentName => "ocm.name",
            SortField::ComponentVersion => "ocm.version",
            SortField::Type => "type",
            SortField::Id => "id",
        }
    }

    /// Whether the field is a point in time (its cursor value must be ISO 8601).
    pub fn is_time(self) -> bool {
        matches!(self, SortField::CreationDate | SortField::LastUpdate)
    }

    /// The value a row's cursor holds for this field.
    pub fn value_of(self, row: &StoredMetadata) -> Option<String> {
        let metadata = &row.metadata;
        match self {
            SortField::CreationDate => metadata.meta.creation_date.clone(),
            SortField::LastUpdate => metadata.meta.last_update.clone(),
            SortField::ComponentName => metadata.artefact.component_name.clone(),
            SortField::ComponentVersion => metadata.artefact.component_version.clone(),
            SortField::Type => Some(metadata.meta.r#type.clone()),
            SortField::Id => Some(row.id.clone()),
        }
    }
}

/// One page's statement: rows matching `condition`, after `cursor` (one value per sort field)
/// in the sort order, at most `limit`.
#[derive(Debug, Clone)]
pub struct SearchStatement {
    pub condition: Condition,
    /// All ascending or all descending (the original refuses mixed orders).
    pub sort: Vec<SortField>,
    pub descending: bool,
    pub cursor: Option<Vec<Option<String>>>,
    pub limit: i64,
}

impl DeliveryDb {
    /// One page of a search.
    pub async fn search(
        &self,
        statement: &SearchStatement,
    ) -> Result<Vec<StoredMetadata>, StoreError> {
        let started = Instant::now();
        let result = async {
            let sql = statement.to_sql(self.backend(), crate::store::COLUMNS)?;
            self.select_rows(sql, operation::SEARCH).await
        }
        .await;
        metrics::record(operation::SEARCH, started, &result);
        result
    }
}

impl SearchStatement {
    pub(crate) fn to_sql(&self, backend: Backend, columns: &str) -> Result<SqlBuilder, StoreError> {
        let mut sql = SqlBuilder::new(&format!("SELECT {columns} FROM artefact_metadata WHERE "));
        push_condition(&mut sql, backend, &self.condition);
        if let Some(cursor) = &self.cursor {
            if cursor.len() != self.sort.len() || self.sort.is_empty() {
                return Err(StoreError::InvalidInput(
                    "the cursor must hold one value per sort field".into(),
                ));
            }
            sql.push(" AND (");
            push_sort_keys(&mut sql, backend, &self.sort);
            sql.push(if self.descending { ") < (" } else { ") > (" });
            for (index, (field, value)) in self.sort.iter().zip(cursor).enumerate() {
                if index > 0 {
                    sql.push(", ");
                }
                if field.is_time() {
                    sql.push(time_open(backend));
                    sql.push_param(value.as_deref());
                    sql.push(time_close(backend));
                } else {
                    sql.push_param(value.as_deref());
                }
            }
            sql.push(")");
        }
        sql.push(" ORDER BY ");
        for (index, field) in self.sort.iter().enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            sql.push(&sort_key(backend, *field));
            sql.push(if self.descending { " DESC" } else { " ASC" });
        }
        sql.push(&format!(" LIMIT {}", self.limit.clamp(1, 10_000)));
        if sql.parameters() > MAX_PARAMETERS_PER_STATEMENT {
            return Err(StoreError::InvalidInput(format!(
                "the search binds {} values; at most {MAX_PARAMETERS_PER_STATEMENT} fit one statement (name fewer values or a smaller scope)",
                sql.parameters()
            )));
        }
        Ok(sql)
    }
}

fn push_sort_keys(sql: &mut SqlBuilder, backend: Backend, sort: &[SortField]) {
    for (index, field) in sort.iter().enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.push(&sort_key(backend, *field));
    }
}

/// A sort field's expression (no parameters: the JSON keys are fixed).
fn sort_key(backend: Backend, field: SortField) -> String {
    let meta = |key: &str| match backend {
        Backend::Postgres => time_of(backend, &format!("(meta ->> '{key}')")),
        Backend::Sqlite => time_of(backend, &format!("json_extract(meta, '$.{key}')")),
    };
    match field {
        SortField::CreationDate => meta("creation_date"),
        SortField::LastUpdate => meta("last_update"),
        SortField::ComponentName => "CAST(component_name AS TEXT)".into(),
        SortField::ComponentVersion => "CAST(component_version AS TEXT)".into(),
        SortField::Type => "CAST(type AS TEXT)".into(),
        SortField::Id => "CAST(id AS TEXT)".into(),
    }
}

/// `expression` read as a point in time.
fn time_of(backend: Backend, expression: &str) -> String {
    format!("{}{expression}{}", time_open(backend), time_close(backend))
}

fn time_open(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(",
        Backend::Sqlite => "julianday(",
    }
}

fn time_close(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " AS timestamp with time zone)",
        Backend::Sqlite => ")",
    }
}

/// The attribute as text.
fn push_attr(sql: &mut SqlBuilder, backend: Backend, attr: &Attr) {
    match attr {
        Attr::Column(column) => sql.push(&format!("CAST({column} AS TEXT)")),
        Attr::Meta(key) => push_json(sql, backend, "meta", std::slice::from_ref(key)),
        Attr::Data(path) => push_json(sql, backend, "data", path),
    }
}

fn push_json(sql: &mut SqlBuilder, backend: Backend, column: &str, path: &[String]) {
    match backend {
        Backend::Postgres => {
            sql.push(&format!("({column}"));
            for (index, key) in path.iter().enumerate() {
                sql.push(if index + 1 == path.len() {
                    " ->> "
                } else {
                    " -> "
                });
                sql.push_param_as(Some(key), "TEXT");
            }
            sql.push(")");
        }
        Backend::Sqlite => {
            // keys quoted, so that dots and spaces in them are keys, not paths
            let json_path: String = std::iter::once("$".to_string())
                .chain(path.iter().map(|key| format!(".\"{key}\"")))
                .collect();
            sql.push(&format!("CAST(json_extract({column}, "));
            sql.push_param(Some(&json_path));
            sql.push(") AS TEXT)");
        }
    }
}

fn push_condition(sql: &mut SqlBuilder, backend: Backend, condition: &Condition) {
    match condition {
        Condition::True => sql.push("1 = 1"),
        Condition::And(parts) => {
            if parts.is_empty() {
                sql.push("1 = 1");
                return;
            }
            sql.push("(");
            for (index, part) in parts.iter().enumerate() {
                if index > 0 {
                    sql.push(" AND ");
                }
                push_condition(sql, backend, part);
            }
            sql.push(")");
        }
        Condition::Or(parts) => {
            sql.push("(");
            sql.push_any_of(parts, &mut |sql, part| push_condition(sql, backend, part));
            sql.push(")");
        }
        Condition::Not(inner) => {
            // NULL (an absent field) is "not matching" for NOT too, as in the original's SQL
            sql.push("NOT (");
            push_condition(sql, backend, inner);
            sql.push(")");
        }
        Condition::Text { attr, op, value } => {
            if *op == TextOp::Like {
                sql.push("LOWER(");
                push_attr(sql, backend, attr);
                sql.push(") LIKE LOWER(");
                sql.push_param(Some(value));
                sql.push(") ESCAPE '\\'");
            } else {
                push_attr(sql, backend, attr);
                sql.push(&format!(" {} ", op.sql()));
                sql.push_param(Some(value));
            }
        }
        Condition::In { attr, values } => {
            push_attr(sql, backend, attr);
            sql.push(" IN (");
            sql.push_list(values.iter().map(|value| Some(value.as_str())));
            sql.push(")");
        }
        Condition::Time { attr, op, value } => {
            let comparison = if *op == TextOp::Ge { ">=" } else { "<=" };
            sql.push(time_open(backend));
            push_attr(sql, backend, attr);
            sql.push(time_close(backend));
            sql.push(&format!(" {comparison} "));
            sql.push(time_open(backend));
            sql.push_param(Some(value));
            sql.push(time_close(backend));
        }
        Condition::Severity { cases, op, value } => {
            sql.push("(CASE");
            for (finding_type, severity, category_value) in cases {
                sql.push(" WHEN CAST(type AS TEXT) = ");
                sql.push_param(Some(finding_type));
                sql.push(" AND UPPER(");
                push_attr(sql, backend, &Attr::Data(vec!["severity".into()]));
                sql.push(") = ");
                sql.push_param(Some(severity));
                sql.push(&format!(" THEN {category_value}"));
            }
            sql.push(&format!(" ELSE 0 END) {} {value}", op.sql()));
        }
        Condition::Blank(attr) => {
            sql.push("(");
            push_attr(sql, backend, attr);
            sql.push(" IS NULL OR ");
            push_attr(sql, backend, attr);
            sql.push(" = '')");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(condition: Condition) -> SearchStatement {
        SearchStatement {
            condition,
            sort: vec![SortField::CreationDate, SortField::Id],
            descending: true,
            cursor: Some(vec![
                Some("2025-01-08T10:00:00+00:00".into()),
                Some("ab".into()),
            ]),
            limit: 50,
        }
    }

    #[test]
    fn values_and_keys_are_parameters() {
        let condition = Condition::And(vec![
            Condition::Text {
                attr: Attr::Data(vec!["package_name".into()]),
                op: TextOp::Like,
                value: "%ssl%".into(),
            },
            Condition::Not(Box::new(Condition::In {
                attr: Attr::column("type").unwrap(),
                values: vec!["finding/license".into()],
            })),
        ]);
        let postgres = statement(condition.clone())
            .to_sql(Backend::Postgres, "id")
            .unwrap();
        assert_eq!(
            postgres.text(),
            "SELECT id FROM artefact_metadata WHERE (LOWER((data ->> CAST($1 AS TEXT))) LIKE LOWER($2) ESCAPE '\\' \
             AND NOT (CAST(type AS TEXT) IN ($3))) AND (CAST((meta ->> 'creation_date') AS timestamp with time zone), CAST(id AS TEXT)) \
             < (CAST($4 AS timestamp with time zone), $5) ORDER BY CAST((meta ->> 'creation_date') AS timestamp with time zone) DESC, \
             CAST(id AS TEXT) DESC LIMIT 50"
        );
        let sqlite = statement(condition).to_sql(Backend::Sqlite, "id").unwrap();
        assert!(
            sqlite
                .text()
                .contains("CAST(json_extract(data, $1) AS TEXT)"),
            "{}",
            sqlite.text()
        );
        assert!(
            sqlite.text().contains("< (julianday($4), $5)"),
            "{}",
            sqlite.text()
        );
        assert_eq!(sqlite.parameters(), 5);
    }

    #[test]
    fn unknown_columns_are_not_attributes() {
        assert!(Attr::column("type").is_some());
        assert!(Attr::column("meta; DROP TABLE x").is_none());
    }
}
