//! CVE rescoring rule sets (the original's `CveRescoringRuleSet`): for a vulnerability on an
//! artefact whose `gardener.cloud/cve-categorisation` label says how it is exposed, the rules
//! whose category value the categorisation has and whose CVSS values the finding's vector
//! matches, applied in order to the finding's categorisation, propose a new severity. Pure.
//!
//! ```yaml
//! rescoring_ruleset:
//!   name: vulnerability-rescoring-v1
//!   operations: {reduce: {order: [CRITICAL, HIGH, MEDIUM, LOW, NONE], value: 1}}
//!   rules:
//!     - category_value: network_exposure:protected
//!       name: network-exposure-protected
//!       rules:
//!         - {cve_values: ['AV:N'], operation: reduce}
//!         - {cve_values: ['AV:A', 'AV:L', 'AV:P'], operation: set-to-NONE}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The label the categorisation is read from (artefact first, then component).
pub const CVE_CATEGORISATION_LABEL: &str = "gardener.cloud/cve-categorisation";
const SET_TO: &str = "set-to-";
const CATEGORY_ATTRIBUTES: [&str; 6] = [
    "network_exposure",
    "authentication_enforced",
    "user_interaction",
    "confidentiality_requirement",
    "integrity_requirement",
    "availability_requirement",
];

/// An operation: to a categorisation id, or steps along an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    SetTo(String),
    Step { order: Vec<String>, value: i64 },
}

/// One rule: `category_value` `<attribute>:<value>` and the CVSS metric values it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CveRule {
    pub name: Option<String>,
    pub category_attribute: String,
    pub category_value: String,
    /// Long metric name (`access_vector`) → values (`N`, `A`, ...).
    pub cve_values: BTreeMap<String, BTreeSet<String>>,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CveRuleSet {
    pub name: String,
    pub rules: Vec<CveRule>,
}

/// The original's `CVSSV3.attr_name_from_CVSS` (it knows no `S`).
fn metric_name(short: &str) -> Option<&'static str> {
    Some(match short {
        "AV" => "access_vector",
        "AC" => "attack_complexity",
        "UI" => "user_interaction",
        "C" => "confidentiality",
        "I" => "integrity",
        "A" => "availability",
        "PR" => "privileges_required",
        _ => return None,
    })
}

fn operation(raw: &Value, operations: &BTreeMap<String, Operation>) -> Result<Operation, String> {
    match raw {
        Value::String(name) => match operations.get(name) {
            Some(operation) => Ok(operation.clone()),
            None => name
                .strip_prefix(SET_TO)
                .map(|id| Operation::SetTo(id.to_string()))
                .ok_or_else(|| {
                    format!("operation {name:?}: neither a defined operation nor {SET_TO}<id>")
                }),
        },
        Value::Object(step) => {
            let order = step
                .get("order")
                .and_then(Value::as_array)
                .ok_or("an operation needs an order")?
                .iter()
                .map(|id| {
                    id.as_str()
                        .map(str::to_string)
                        .ok_or("order: ids are strings")
                })
                .collect::<Result<Vec<_>, _>>()?;
            let value = step
                .get("value")
                .map_or(Some(1), Value::as_i64)
                .ok_or("value: an integer")?;
            Ok(Operation::Step { order, value })
        }
        _ => Err("an operation is a name or {order, value}".into()),
    }
}

impl CveRuleSet {
    /// Reads a rule set as the original's `CveRescoringRuleSet.from_dict`; every category
    /// attribute, metric and operation is checked, so a typo fails at start-up.
    pub fn from_json(raw: &Value) -> Result<CveRuleSet, String> {
        let name = raw
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a rescoring rule set needs a name")?
            .to_string();
        let mut operations = BTreeMap::new();
        if let Some(defined) = raw.get("operations").and_then(Value::as_object) {
            for (operation_name, definition) in defined {
                let parsed = operation(definition, &BTreeMap::new())?;
                operations.insert(operation_name.clone(), parsed);
            }
        }
        let mut rules = Vec::new();
        for group in raw
            .get("rules")
            .and_then(Value::as_array)
            .ok_or("a rescoring rule set needs rules")?
        {
            let category = group
                .get("category_value")
                .and_then(Value::as_str)
                .ok_or("a rule needs a category_value")?;
            let (attribute, value) = category
                .split_once(':')
                .ok_or_else(|| format!("category_value {category:?}: <attribute>:<value>"))?;
            if !CATEGORY_ATTRIBUTES.contains(&attribute) {
                return Err(format!("category_value {category:?}: unknown attribute"));
            }
            let name = group
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string);
            for rule in group
                .get("rules")
                .and_then(Value::as_array)
                .ok_or("a rule needs rules")?
            {
                let mut cve_values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for text in rule
                    .get("cve_values")
                    .and_then(Value::as_array)
                    .ok_or("a rule needs cve_values")?
                {
                    let text = text.as_str().ok_or("cve_values are strings")?;
                    let (metric, metric_value) = text
                        .split_once(':')
                        .ok_or_else(|| format!("cve value {text:?}: <metric>:<value>"))?;
                    let metric = metric_name(metric)
                        .ok_or_else(|| format!("cve value {text:?}: unknown metric"))?;
                    cve_values
                        .entry(metric.to_string())
                        .or_default()
                        .insert(metric_value.to_string());
                }
                rules.push(CveRule {
                    name: name.clone(),
                    category_attribute: attribute.to_string(),
                    category_value: value.to_string(),
                    cve_values,
                    operation: operation(
                        rule.get("operation").ok_or("a rule needs an operation")?,
                        &operations,
                    )?,
                });
            }
        }
        Ok(CveRuleSet { name, rules })
    }

    /// The rules that match: the categorisation has the rule's value for its attribute (a bool
    /// compared as YAML reads `true`/`false`), and every metric the rule names has one of its
    /// values in `cvss` (metrics it does not name are not checked).
    pub fn matching(&self, categorisation: &Value, cvss: &Value) -> Vec<&CveRule> {
        self.rules
            .iter()
            .filter(|rule| {
                let actual = categorisation.get(&rule.category_attribute);
                let category_matches = match actual {
                    Some(Value::Bool(flag)) => {
                        matches!(
                            (rule.category_value.as_str(), flag),
                            ("true" | "True" | "yes", true) | ("false" | "False" | "no", false)
                        )
                    }
                    Some(Value::String(text)) => *text == rule.category_value,
                    _ => false,
                };
                let cvss_matches = cvss.as_object().is_some_and(|metrics| {
                    metrics.iter().all(|(metric, value)| {
                        match (rule.cve_values.get(metric), value.as_str()) {
                            (None, _) => true,
                            (Some(allowed), Some(value)) => allowed.contains(value),
                            (Some(_), None) => false,
                        }
                    })
                });
                category_matches && cvss_matches
            })
            .collect()
    }
}

/// The original's `rescore_finding`: each rule's operation in turn, from `current`.
pub fn rescore(current: &str, rules: &[&CveRule]) -> String {
    let mut current = current.to_string();
    for rule in rules {
        current = match &rule.operation {
            Operation::SetTo(id) => id.clone(),
            Operation::Step { order, value } => match order.iter().position(|id| *id == current) {
                Some(index) => {
                    let next = (index as i64 + value).clamp(0, order.len() as i64 - 1);
                    order[next as usize].clone()
                }
                None => current,
            },
        };
    }
    current
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The original's default `vulnerability-rescoring-v1`, in part.
    fn rule_set() -> CveRuleSet {
        CveRuleSet::from_json(&json!({
            "name": "vulnerability-rescoring-v1",
            "operations": {"reduce": {"order": ["CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE"], "value": 1}},
            "rules": [
                {"category_value": "network_exposure:protected", "name": "network-exposure-protected",
                 "rules": [{"cve_values": ["AV:N"], "operation": "reduce"},
                           {"cve_values": ["AV:A", "AV:L", "AV:P"], "operation": "set-to-NONE"}]},
                {"category_value": "authentication_enforced:true", "name": "authentication-enforced",
                 "rules": [{"cve_values": ["PR:L", "PR:H"], "operation": "reduce"}]},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn matching_rules_apply_in_order() {
        let rules = rule_set();
        let categorisation =
            json!({"network_exposure": "protected", "authentication_enforced": true});
        let network = json!({"access_vector": "N", "privileges_required": "L"});
        let matched = rules.matching(&categorisation, &network);
        assert_eq!(
            matched
                .iter()
                .map(|rule| rule.name.as_deref())
                .collect::<Vec<_>>(),
            [
                Some("network-exposure-protected"),
                Some("authentication-enforced")
            ]
        );
        assert_eq!(rescore("CRITICAL", &matched), "MEDIUM");
        assert_eq!(rescore("NONE", &matched), "NONE", "the order's end holds");
        let local = json!({"access_vector": "L", "privileges_required": "N"});
        let matched = rules.matching(&categorisation, &local);
        assert_eq!(rescore("HIGH", &matched), "NONE");
        assert!(rules
            .matching(&json!({"network_exposure": "public"}), &network)
            .is_empty());
    }

    #[test]
    fn bad_rule_sets_are_refused() {
        for bad in [
            json!({"name": "x", "rules": [{"category_value": "exposure:public", "rules": []}]}),
            json!({"name": "x", "rules": [{"category_value": "network_exposure:public",
                "rules": [{"cve_values": ["XX:N"], "operation": "set-to-NONE"}]}]}),
            json!({"name": "x", "rules": [{"category_value": "network_exposure:public",
                "rules": [{"cve_values": ["AV:N"], "operation": "halve"}]}]}),
            json!({"rules": []}),
        ] {
            assert!(CveRuleSet::from_json(&bad).is_err(), "{bad}");
        }
    }
}
