//! `POST /artefacts/metadata/query`: the filter and its SQL, with the original's matching rules
//! (see `artefact-metadata.md` §3), and a small builder for statements with `$n` parameters.
//!
//! A query of any size becomes as many statements as it needs: each binds at most
//! [`MAX_PARAMETERS_PER_STATEMENT`] values (PostgreSQL refuses more than 65,535, SQLite more than
//! 32,766), and every list of alternatives is written as a balanced tree of `OR`s, so an
//! expression nests about log2(alternatives) deep (SQLite refuses more than 1,000 levels, which a
//! chain of 999 `OR`s reaches). The caller unites the statements' rows.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::error::StoreError;
use crate::model::{ComponentArtefactId, LocalArtefactId};

/// Values bound per statement, far below both backends' limits.
pub const MAX_PARAMETERS_PER_STATEMENT: usize = 8_000;
/// Version artefacts written into one statement's copy of an entry; an entry with more is split
/// into several entries that each carry a part of them (their union matches the same rows).
const MAX_VERSION_ARTEFACTS_PER_STATEMENT: usize = 1_000;
/// Parameters one entry binds besides its version artefacts: component name and version,
/// artefact kind, name, version, type and extra id.
const PARAMETERS_PER_ENTRY: usize = 7;
/// Parameters one version artefact binds: name, version, type and extra id.
const PARAMETERS_PER_VERSION_ARTEFACT: usize = 4;

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

    /// The statements that together select the query's rows (each ordered by id; rows may repeat
    /// across statements). Refuses filters too long for one statement.
    pub(crate) fn to_statements(&self, columns: &str) -> Result<Vec<SqlBuilder>, StoreError> {
        let filter_parameters =
            self.types.len() + self.referenced_types.len() + self.datasources.len();
        let entry_budget = MAX_PARAMETERS_PER_STATEMENT.saturating_sub(filter_parameters);
        let largest_part = PARAMETERS_PER_ENTRY
            + PARAMETERS_PER_VERSION_ARTEFACT * MAX_VERSION_ARTEFACTS_PER_STATEMENT;
        if entry_budget < largest_part {
            return Err(StoreError::InvalidInput(format!(
                "{filter_parameters} type, referenced_type and datasource values are too many; at most {} in all",
                MAX_PARAMETERS_PER_STATEMENT - largest_part
            )));
        }
        if self.entries.is_empty() {
            return Ok(vec![self.statement(columns, &[])]);
        }
        let parts: Vec<EntryPart<'_>> = self
            .entries
            .iter()
            .flat_map(|entry| {
                let chunks: Vec<&[LocalArtefactId]> = if entry.version_artefacts.is_empty() {
                    vec![&[]]
                } else {
                    entry
                        .version_artefacts
                        .chunks(MAX_VERSION_ARTEFACTS_PER_STATEMENT)
                        .collect()
                };
                chunks.into_iter().map(move |version_artefacts| EntryPart {
                    id: &entry.id,
                    version_artefacts,
                })
            })
            .collect();
        let mut statements = Vec::new();
        let mut batch_start = 0;
        let mut batch_parameters = 0;
        for (index, part) in parts.iter().enumerate() {
            let parameters = part.parameters();
            if index > batch_start && batch_parameters + parameters > entry_budget {
                statements.push(self.statement(columns, &parts[batch_start..index]));
                batch_start = index;
                batch_parameters = 0;
            }
            batch_parameters += parameters;
        }
        statements.push(self.statement(columns, &parts[batch_start..]));
        Ok(statements)
    }

    fn statement(&self, columns: &str, parts: &[EntryPart<'_>]) -> SqlBuilder {
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
        if !parts.is_empty() {
            let none_ok = self.none_ok();
            sql.push(" AND (");
            sql.push_any_of(parts, &mut |sql, part| push_entry(sql, part, none_ok));
            sql.push(")");
        }
        sql.push(" ORDER BY id");
        sql
    }
}

/// An entry with all of its version artefacts, or with one chunk of them.
struct EntryPart<'query> {
    id: &'query ComponentArtefactId,
    version_artefacts: &'query [LocalArtefactId],
}

impl EntryPart<'_> {
    /// An upper bound of the values its condition binds.
    fn parameters(&self) -> usize {
        PARAMETERS_PER_ENTRY + PARAMETERS_PER_VERSION_ARTEFACT * self.version_artefacts.len()
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

fn push_entry(sql: &mut SqlBuilder, entry: &EntryPart<'_>, none_ok: bool) {
    let id = entry.id;
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
            sql.push_any_of(entry.version_artefacts, &mut |sql, artefact| {
                sql.push("(");
                sql.push_nullable_eq("artefact_name", artefact.artefact_name.as_deref());
                sql.push(" AND ");
                sql.push_nullable_eq("artefact_version", artefact.artefact_version.as_deref());
                sql.push(" AND ");
                sql.push_nullable_eq("artefact_type", artefact.artefact_type.as_deref());
                sql.push(" AND artefact_extra_id_normalised = ");
                sql.push_param(Some(&artefact.normalised_extra_id()));
                sql.push(")");
            });
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

    /// `CAST($n AS <sql_type>)`: a parameter of a column's own type, e.g. `CHAR(32)` for an id
    /// (PostgreSQL compares a `character(n)` column with a text parameter as text, which its
    /// index cannot serve; SQLite reads `CHAR(n)` as text).
    pub(crate) fn push_param_as(&mut self, value: Option<&str>, sql_type: &str) {
        self.arguments.push(value.map(str::to_string));
        self.sql
            .push_str(&format!("CAST(${} AS {sql_type})", self.arguments.len()));
    }

    pub(crate) fn push_list<'a>(&mut self, values: impl Iterator<Item = Option<&'a str>>) {
        self.push_list_as(values, None);
    }

    /// Like [`SqlBuilder::push_list`], each value cast to `sql_type` (see [`SqlBuilder::push_param_as`]).
    pub(crate) fn push_list_as<'a>(
        &mut self,
        values: impl Iterator<Item = Option<&'a str>>,
        sql_type: Option<&str>,
    ) {
        let mut first = true;
        for value in values {
            if !first {
                self.sql.push_str(", ");
            }
            first = false;
            match sql_type {
                Some(sql_type) => self.push_param_as(value, sql_type),
                None => self.push_param(value),
            }
        }
        if first {
            // `IN ()` is not SQL; nothing matches an empty list.
            self.sql.push_str("NULL");
        }
    }

    /// The alternatives joined by `OR` as a balanced tree of parenthesised pairs, so that the
    /// expression nests about log2(n) deep rather than n deep. Nothing matches no alternatives.
    pub(crate) fn push_any_of<T>(
        &mut self,
        alternatives: &[T],
        push_alternative: &mut impl FnMut(&mut SqlBuilder, &T),
    ) {
        match alternatives {
            [] => self.sql.push_str("1 = 0"),
            [only] => push_alternative(self, only),
            _ => {
                let (left, right) = alternatives.split_at(alternatives.len() / 2);
                self.sql.push('(');
                self.push_any_of(left, push_alternative);
                self.sql.push_str(" OR ");
                self.push_any_of(right, push_alternative);
                self.sql.push(')');
            }
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

    /// Values bound so far.
    pub(crate) fn parameters(&self) -> usize {
        self.arguments.len()
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
        let statements = query.to_statements("id").unwrap();
        let [sql] = statements.as_slice() else {
            panic!("one statement for one entry");
        };
        assert_eq!(
            sql.text(),
            "SELECT id FROM artefact_metadata WHERE 1 = 1 AND type IN ($1) AND (((component_name = $2) \
             AND (component_version = $3) AND artefact_kind = $4 AND (artefact_name = $5))) ORDER BY id"
        );
    }

    fn artefact(index: usize) -> LocalArtefactId {
        LocalArtefactId {
            artefact_name: Some(format!("artefact-{index}")),
            artefact_version: Some("1".into()),
            artefact_type: Some("ociImage".into()),
            ..Default::default()
        }
    }

    fn versioned_entry(index: usize, artefacts: usize) -> QueryEntry {
        QueryEntry {
            id: ComponentArtefactId {
                component_name: Some(format!("component-{index}")),
                component_version: Some("1".into()),
                ..Default::default()
            },
            version_artefacts: (0..artefacts).map(artefact).collect(),
        }
    }

    /// The deepest parenthesis nesting of a statement: a bound of its expression depth.
    fn parenthesis_depth(sql: &str) -> usize {
        let mut depth: usize = 0;
        let mut deepest = 0;
        for character in sql.chars() {
            match character {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            deepest = deepest.max(depth);
        }
        deepest
    }

    #[test]
    fn alternatives_form_a_balanced_tree() {
        let mut sql = SqlBuilder::new("");
        sql.push_any_of(&["a", "b", "c", "d", "e"], &mut |sql, item| sql.push(item));
        assert_eq!(sql.text(), "((a OR b) OR (c OR (d OR e)))");
        let mut sql = SqlBuilder::new("");
        sql.push_any_of::<&str>(&[], &mut |sql, item| sql.push(item));
        assert_eq!(sql.text(), "1 = 0");
    }

    #[test]
    fn large_queries_split_into_statements_within_the_limits() {
        // many small entries, and a few with more artefacts than one statement carries
        let mut entries: Vec<QueryEntry> =
            (0..5_000).map(|index| versioned_entry(index, 3)).collect();
        entries.extend((0..3).map(|index| versioned_entry(10_000 + index, 2_500)));
        let query = MetadataQuery {
            types: vec!["finding/vulnerability".into(), "rescorings".into()],
            entries,
            ..Default::default()
        };
        let statements = query.to_statements("id").unwrap();
        assert!(statements.len() > 1);
        for statement in &statements {
            assert!(statement.parameters() <= MAX_PARAMETERS_PER_STATEMENT);
            assert!(
                parenthesis_depth(statement.text()) < 40,
                "{}",
                parenthesis_depth(statement.text())
            );
        }
        // every entry and every artefact is in some statement
        let all: String = statements
            .iter()
            .map(|statement| statement.text().to_string())
            .collect();
        let bound: usize = statements.iter().map(SqlBuilder::parameters).sum();
        let expected = 5_000 * (2 + 3 * 4) + 3 * (2 * 3 + 2_500 * 4) + 2 * statements.len();
        assert_eq!(bound, expected);
        assert!(all.contains("ORDER BY id"));
    }

    #[test]
    fn filters_too_long_for_a_statement_are_refused() {
        let query = MetadataQuery {
            types: (0..8_000).map(|index| format!("type-{index}")).collect(),
            ..Default::default()
        };
        let error = query.to_statements("id").unwrap_err();
        assert_eq!(error.kind(), crate::StoreErrorKind::InvalidInput);
    }
}
