//! Reading Prometheus text exposition in tests and benchmarks: the sample lines of a family, and
//! sums of their values. One reader for every test, so they all agree on what a family's line is.

/// The sample lines of `family` (comments skipped): `family 1`, `family{...} 1`, and the
/// histogram and summary series `family_bucket`, `family_sum`, `family_count`.
pub fn samples<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(family).is_some_and(|rest| {
                rest.starts_with('{') || rest.starts_with(' ') || rest.starts_with('_')
            })
        })
        .collect()
}

/// The value of one sample line (its last field); NaN when it is not a number.
pub fn value_of(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The sum of the samples of exactly `family` (not its `_bucket`/`_sum`/`_count` series) whose
/// line contains every one of `fragments` (e.g. `tier="memory"`).
pub fn sum(text: &str, family: &str, fragments: &[&str]) -> f64 {
    samples(text, family)
        .into_iter()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| fragments.iter().all(|fragment| line.contains(fragment)))
        .map(value_of)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP hits Hits.\n# TYPE hits counter\nhits{tier=\"memory\",result=\"hit\"} 3\nhits{tier=\"disk\",result=\"hit\"} 2\nhits_total_other 9\nlatency_bucket{le=\"1\"} 4\nlatency_count 4\nup 1\n";

    #[test]
    fn families_and_sums() {
        assert_eq!(
            samples(TEXT, "hits").len(),
            3,
            "hits_total_other starts with hits_"
        );
        assert_eq!(sum(TEXT, "hits", &[]), 5.0);
        assert_eq!(sum(TEXT, "hits", &["tier=\"memory\""]), 3.0);
        assert_eq!(samples(TEXT, "latency").len(), 2);
        assert_eq!(sum(TEXT, "up", &[]), 1.0);
        assert_eq!(sum(TEXT, "absent", &[]), 0.0);
    }
}
