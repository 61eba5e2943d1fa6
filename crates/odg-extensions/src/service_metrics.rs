//! The few counters of the service's `/metrics` that show a run's cache effect: registry requests
//! (origin fetches), origin loads and cache lookups by tier and result. Read before and after a
//! run; the difference is what the run cost the service. With several pods behind one URL a
//! scrape sees one pod: give each pod's metrics URL to see the fleet.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counter sums, summed over every scraped endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceCounters {
    /// `odg_registry_requests_total`, all labels: every HTTP exchange with a registry.
    pub registry_requests: f64,
    /// `odg_cache_origin_loads_total`: fills from the origin (kind `answer` excluded: rendered
    /// answers are made from cached parts).
    pub origin_loads: f64,
    /// `odg_cache_lookups_total` by tier, then result.
    pub lookups: BTreeMap<String, BTreeMap<String, f64>>,
}

impl ServiceCounters {
    /// `self - earlier`, counter by counter (a pod restarted in between shows as 0, not negative).
    pub fn since(&self, earlier: &ServiceCounters) -> ServiceCounters {
        let mut lookups = BTreeMap::new();
        for (tier, results) in &self.lookups {
            let mut delta = BTreeMap::new();
            for (result, value) in results {
                let before = earlier
                    .lookups
                    .get(tier)
                    .and_then(|results| results.get(result))
                    .copied()
                    .unwrap_or(0.0);
                delta.insert(result.clone(), (value - before).max(0.0));
            }
            lookups.insert(tier.clone(), delta);
        }
        ServiceCounters {
            registry_requests: (self.registry_requests - earlier.registry_requests).max(0.0),
            origin_loads: (self.origin_loads - earlier.origin_loads).max(0.0),
            lookups,
        }
    }

    /// Adds the counters of one Prometheus text exposition.
    pub fn add_exposition(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((series, value)) = split_sample(line) else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            match name {
                "odg_registry_requests_total" => self.registry_requests += value,
                // Rendered answers are made from cached descriptors and trees, never from the
                // origin: their fills are not origin loads.
                "odg_cache_origin_loads_total"
                    if parse_labels(labels).get("kind").map(String::as_str) != Some("answer") =>
                {
                    self.origin_loads += value
                }
                "odg_cache_lookups_total" => {
                    let labels = parse_labels(labels);
                    let tier = labels.get("tier").cloned().unwrap_or_default();
                    let result = labels.get("result").cloned().unwrap_or_default();
                    *self
                        .lookups
                        .entry(tier)
                        .or_default()
                        .entry(result)
                        .or_default() += value;
                }
                _ => {}
            }
        }
    }
}

/// `series value [timestamp]` -> (series, value). Label values may contain spaces, so the series
/// ends at the closing brace when there is one.
fn split_sample(line: &str) -> Option<(&str, f64)> {
    let series_end = match line.find('{') {
        Some(_) => line.rfind('}')? + 1,
        None => line.find(char::is_whitespace)?,
    };
    let (series, rest) = line.split_at(series_end);
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((series, value))
}

/// `a="x",b="y"` -> map; escapes (`\"`, `\\`, `\n`) resolved.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((index, character)) = chars.next() {
            match character {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = index + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        labels.insert(
            name.trim().trim_start_matches(',').trim().to_string(),
            value,
        );
        rest = &after[end..];
    }
    labels
}

/// Scrapes every URL and sums their counters; `None` if any scrape failed (a partial sum would
/// misstate the effect).
pub async fn scrape(http: &reqwest::Client, urls: &[String]) -> Option<ServiceCounters> {
    let mut counters = ServiceCounters::default();
    for url in urls {
        let response = match http.get(url).send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::warn!(%url, status = %response.status(), "metrics scrape failed");
                return None;
            }
            Err(error) => {
                tracing::warn!(%url, %error, "metrics scrape failed");
                return None;
            }
        };
        match response.text().await {
            Ok(text) => counters.add_exposition(&text),
            Err(error) => {
                tracing::warn!(%url, %error, "metrics scrape failed");
                return None;
            }
        }
    }
    Some(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# TYPE odg_registry_requests_total counter
odg_registry_requests_total{host="127.0.0.1:5001",operation="manifest",outcome="ok"} 30
odg_registry_requests_total{host="127.0.0.1:5001",operation="blob",outcome="ok"} 31
odg_cache_origin_loads_total{kind="descriptor",result="ok"} 30
odg_cache_origin_loads_total{kind="answer",result="ok"} 12
odg_cache_lookups_total{kind="descriptor",tier="memory",result="hit"} 5
odg_cache_lookups_total{kind="versions",tier="memory",result="hit"} 2
odg_cache_lookups_total{kind="descriptor",tier="memory",result="miss"} 30
odg_cache_lookups_total{kind="descriptor",tier="shared",result="miss"} 30
http_server_active_requests{method="GET",route="/a b"} 1
odg_build_info{version="0.1.0"} 1
"#;

    #[test]
    fn parses_the_counters_it_needs() {
        let mut counters = ServiceCounters::default();
        counters.add_exposition(EXPOSITION);
        assert_eq!(counters.registry_requests, 61.0);
        assert_eq!(counters.origin_loads, 30.0);
        assert_eq!(counters.lookups["memory"]["hit"], 7.0);
        assert_eq!(counters.lookups["memory"]["miss"], 30.0);
        assert_eq!(counters.lookups["shared"]["miss"], 30.0);
    }

    #[test]
    fn deltas_never_go_negative() {
        let mut before = ServiceCounters::default();
        before.add_exposition(EXPOSITION);
        let mut after = before.clone();
        after.registry_requests += 4.0;
        *after
            .lookups
            .get_mut("memory")
            .unwrap()
            .get_mut("hit")
            .unwrap() += 3.0;
        let delta = after.since(&before);
        assert_eq!(delta.registry_requests, 4.0);
        assert_eq!(delta.lookups["memory"]["hit"], 3.0);
        assert_eq!(delta.lookups["memory"]["miss"], 0.0);
        let restarted = ServiceCounters::default().since(&before);
        assert_eq!(restarted.registry_requests, 0.0);
    }

    #[test]
    fn labels_with_escapes_and_commas() {
        let labels = parse_labels(r#"a="x,y",b="say \"hi\"",c="""#);
        assert_eq!(labels["a"], "x,y");
        assert_eq!(labels["b"], "say \"hi\"");
        assert_eq!(labels["c"], "");
    }
}
