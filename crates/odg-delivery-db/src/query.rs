//! `POST /artefacts/metadata/query`: the filter and its SQL, with the original's matching rules
//! (see `artefact-metadata.md` §3), and a small builder for statements with `$n` parameters.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::model::{ComponentArtefactId, LocalArtefactId};

/// Types whose presence in the `type` filter lets null fields match anything (`none_ok`).
pub const NONE_OK_TYPES: [&str; 2] = ["rescorings", "meta/scanner_writeback"];

/// One entry of the query body, with what the caller resolved for it.
#[derive(Debug, Clone, Default)]
pub struct QueryEntry {
    pub id: ComponentArtefactId,
    /// The artefacts (resources and sources) of `component_name`@`component_version`, looked up
    /// by the caller: a version-less row about one of them matches the version.
    pub version_artefacts: Vec<LocalArtefactId>,
}

#[derive(Debug, Clone, Default)]
pub struct MetadataQuery {
    pub types: Vec<String>,
    pub referenced_types: Vec<String>,
    pub datasources: Vec<String>,
    /// OR'd; none means no artefact restriction.
    pub entries: Vec<QueryEntry>,
}

impl MetadataQuery {
    /// True when there is no `type` filter, or it names rescorings or scanner write-backs.
    pub fn none_ok(&self) -> bool {
        self.types.is_empty()
            || self
                .types
                .iter()
                .any(|r#type| NONE_OK_TYPES.contains(&r#type.as_str()))
    }

    pub(crate) fn to_sql(&self, columns: &str) -> SqlBuilder {
        let mut sql = SqlBuilder::new(&format!(
            "SELECT {columns} FROM artefact_metadata WHERE 1 = 1"
        ));
        for (column, values) in [
            ("type", &self.types),
            ("referenced_type", &self.referenced_types),
            ("datasource", &self.datasources),
        ] {
            if !values.is_empty() {
                sql.push(&format!(" AND {column} IN ("));
                sql.push_list(values.iter().map(|value| Some(value.as_str())));
                sql.push(")");
            }
        }
        if !self.entries.is_empty() {
            let none_ok = self.none_ok();
            sql.push(" AND (");
            for (index, entry) in self.entries.iter().enumerate() {
                if index > 0 {
                    sql.push(" OR ");
                }
                push_entry(&mut sql, entry, none_ok);
            }
            sql.push(")");
        }
        sql.push(" ORDER BY id");
        sql
    }
}

/// `(column = $n [OR column IS NULL])`, the null branch only with `none_ok`.
fn push_equal_or_null(sql: &mut SqlBuilder, column: &str, value: &str, none_ok: bool) {
    sql.push(&format!("({column} = "));
    sql.push_param(Some(value));
    if none_ok {
        sql.push(&format!(" OR {column} IS NULL"));
    }
    sql.push(")");
}

fn push_entry(sql: &mut SqlBuilder, entry: &QueryEntry, none_ok: bool) {
    let id = &entry.id;
    sql.push("(");
    match &id.component_name {
        Some(name) => push_equal_or_null(sql, "component_name", name, none_ok),
        None => sql.push("component_name IS NULL"),
    }
    if let Some(version) = &id.component_version {
        sql.push(" AND (component_version = ");
        sql.push_param(Some(version));
        if none_ok {
            sql.push(" OR component_version IS NULL");
        }
        if !entry.version_artefacts.is_empty() {
            sql.push(" OR (component_version IS NULL AND (");
            for (index, artefact) in entry.version_artefacts.iter().enumerate() {
                if index > 0 {
                    sql.push(" OR ");
                }
                sql.push("(");
                sql.push_nullable_eq("artefact_name", artefact.artefact_name.as_deref());
                sql.push(" AND ");
                sql.push_nullable_eq("artefact_version", artefact.artefact_version.as_deref());
                sql.push(" AND ");
                sql.push_nullable_eq("artefact_type", artefact.artefact_type.as_deref());
                sql.push(" AND artefact_extra_id_normalised = ");
                sql.push_param(Some(&artefact.normalised_extra_id()));
                sql.push(")");
            }
            sql.push("))");
        }
        sql.push(")");
    }
    if let Some(kind) = id.artefact_kind {
        sql.push(" AND artefact_kind = ");
        sql.push_param(Some(kind.as_str()));
    }
    if let Some(local) = &id.artefact {
        for (column, value) in [
            ("artefact_name", &local.artefact_name),
            ("artefact_version", &local.artefact_version),
            ("artefact_type", &local.artefact_type),
        ] {
            if let Some(value) = value.as_deref().filter(|value| !value.is_empty()) {
                sql.push(" AND ");
                push_equal_or_null(sql, column, value, none_ok);
            }
        }
        let extra = local.normalised_extra_id();
        if !extra.is_empty() {
            sql.push(" AND (artefact_extra_id_normalised = ");
            sql.push_param(Some(&extra));
            if none_ok {
                sql.push(" OR artefact_extra_id_normalised = ''");
            }
            sql.push(")");
        }
    }
    sql.push(")");
}

/// SQL text with `$n` parameters (one dialect for PostgreSQL and SQLite) and their values.
#[derive(Debug, Default)]
pub(crate) struct SqlBuilder {
    sql: String,
    arguments: Vec<Option<String>>,
}

impl SqlBuilder {
    pub(crate) fn new(start: &str) -> SqlBuilder {
        SqlBuilder {
            sql: start.to_string(),
            arguments: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    pub(crate) fn push_param(&mut self, value: Option<&str>) {
        self.arguments.push(value.map(str::to_string));
        self.sql.push_str(&format!("${}", self.arguments.len()));
    }

    pub(crate) fn push_list<'a>(&mut self, values: impl Iterator<Item = Option<&'a str>>) {
        let mut first = true;
        for value in values {
            if !first {
                self.sql.push_str(", ");
            }
            first = false;
            self.push_param(value);
        }
        if first {
            // `IN ()` is not SQL; nothing matches an empty list.
            self.sql.push_str("NULL");
        }
    }

    /// `column = $n`, or `column IS NULL` for `None`.
    pub(crate) fn push_nullable_eq(&mut self, column: &str, value: Option<&str>) {
        match value {
            Some(value) => {
                self.sql.push_str(&format!("{column} = "));
                self.push_param(Some(value));
            }
            None => self.sql.push_str(&format!("{column} IS NULL")),
        }
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut query = sqlx::query(&self.sql);
        for argument in &self.arguments {
            query = query.bind(argument.clone());
        }
        query
    }

    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ArtefactKind;

    #[test]
    fn entries_become_conditions() {
        let query = MetadataQuery {
            types: vec!["finding/vulnerability".into()],
            entries: vec![QueryEntry {
                id: ComponentArtefactId {
                    component_name: Some("c".into()),
                    component_version: Some("1".into()),
                    artefact_kind: Some(ArtefactKind::Resource),
                    artefact: Some(LocalArtefactId {
                        artefact_name: Some("img".into()),
                        artefact_version: Some(String::new()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                version_artefacts: vec![],
            }],
            ..Default::default()
        };
        assert!(!query.none_ok());
        let sql = query.to_sql("id");
        assert_eq!(
            sql.text(),
            "SELECT id FROM artefact_metadata WHERE 1 = 1 AND type IN ($1) AND (((component_name = $2) \
             AND (component_version = $3) AND artefact_kind = $4 AND (artefact_name = $5))) ORDER BY id"
        );
    }
}
