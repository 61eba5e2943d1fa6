//! Scenario reports: a markdown table, JSON, and an SVG chart per scenario.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::load::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    pub modes: Vec<Summary>,
    /// Optional time series (seconds since start, value) per named series, for line charts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

impl ScenarioReport {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n\n{}\n", self.name, self.description);
        let _ = writeln!(
            out,
            "| mode | requests | ok | shed (503) | errors | throughput/s | p50 ms | p95 ms | p99 ms | max ms | origin fetches | peak RSS MiB |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for mode in &self.modes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
                mode.mode,
                mode.requests,
                mode.ok,
                mode.shed,
                mode.errors,
                mode.throughput_per_second,
                mode.p50_ms,
                mode.p95_ms,
                mode.p99_ms,
                mode.max_ms,
                mode.origin_fetches,
                mode.peak_rss_mib
            );
        }
        let _ = writeln!(out, "\n![{}]({}.svg)\n", self.name, self.name);
        out
    }

    /// Grouped bars of p50/p95/p99 per mode (log scale), plus a line chart when there are series.
    pub fn svg(&self) -> String {
        if !self.series.is_empty() {
            return line_chart(&self.name, &self.series);
        }
        let width = 760.0;
        let height = 360.0;
        let (left, bottom, top) = (70.0, 300.0, 40.0);
        let groups = self.modes.len().max(1) as f64;
        let group_width = (width - left - 20.0) / groups;
        let max = self
            .modes
            .iter()
            .map(|mode| mode.p99_ms.max(mode.p95_ms))
            .fold(0.001, f64::max);
        // Log scale from 0.01 ms to the maximum, so sub-millisecond hits and second-long misses both show.
        let floor: f64 = 0.01;
        let scale = |value: f64| -> f64 {
            let value = value.max(floor);
            (value.log10() - floor.log10()) / (max.log10() - floor.log10()).max(1e-9)
                * (bottom - top)
        };
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
        );
        let _ = write!(
            svg,
            r#"<text x="{left}" y="20" font-size="14">{} — latency percentiles (ms, log scale)</text>"#,
            self.name
        );
        let _ = write!(
            svg,
            r#"<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="black"/>"#,
            width - 10.0
        );
        for tick in [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0] {
            if tick > max * 1.5 {
                break;
            }
            let y = bottom - scale(tick);
            let _ = write!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="5" y="{:.1}">{tick}</text>"##,
                width - 10.0,
                y + 4.0
            );
        }
        let colors = ["#4c78a8", "#f58518", "#e45756"];
        for (index, mode) in self.modes.iter().enumerate() {
            let x0 = left + index as f64 * group_width + 10.0;
            let bar = (group_width - 30.0) / 3.0;
            for (offset, (label, value)) in [
                ("p50", mode.p50_ms),
                ("p95", mode.p95_ms),
                ("p99", mode.p99_ms),
            ]
            .iter()
            .enumerate()
            {
                let h = scale(*value);
                let x = x0 + offset as f64 * bar;
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{label} {value:.2} ms</title></rect>"#,
                    bottom - h,
                    bar - 2.0,
                    colors[offset]
                );
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" font-size="9">{value:.1}</text>"#,
                    x,
                    bottom - h - 3.0
                );
            }
            let _ = write!(
                svg,
                r#"<text x="{x0:.1}" y="{:.1}">{}</text>"#,
                bottom + 16.0,
                escape(&mode.mode)
            );
            let _ = write!(
                svg,
                r#"<text x="{x0:.1}" y="{:.1}">{:.0}/s, {} origin fetches</text>"#,
                bottom + 30.0,
                mode.throughput_per_second,
                mode.origin_fetches
            );
        }
        for (offset, label) in ["p50", "p95", "p99"].iter().enumerate() {
            let x = width - 200.0 + offset as f64 * 60.0;
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="30" width="10" height="10" fill="{}"/><text x="{}" y="39">{label}</text>"#,
                colors[offset],
                x + 14.0
            );
        }
        svg.push_str("</svg>");
        svg
    }

    pub fn write(&self, directory: &Path) -> anyhow::Result<()> {
        std::fs::write(directory.join(format!("{}.svg", self.name)), self.svg())?;
        std::fs::write(
            directory.join(format!("{}.json", self.name)),
            serde_json::to_vec_pretty(self)?,
        )?;
        Ok(())
    }
}

/// Writes a run's summary as `<name>.md` and `<name>.json` into `directory`, and prints the
/// markdown.
pub fn publish_summary(
    directory: &Path,
    name: &str,
    markdown: &str,
    document: &impl Serialize,
) -> anyhow::Result<()> {
    std::fs::write(directory.join(format!("{name}.md")), markdown)?;
    std::fs::write(
        directory.join(format!("{name}.json")),
        serde_json::to_vec_pretty(document)?,
    )?;
    println!("{markdown}");
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn line_chart(name: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    let (width, height, left, bottom, top) = (760.0, 360.0, 60.0, 310.0, 40.0);
    let max_t = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(t, _)| *t))
        .fold(1.0, f64::max);
    let max_v = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(_, v)| *v))
        .fold(1.0, f64::max);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><text x="{left}" y="20" font-size="14">{name} — over time (s)</text>"#
    );
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>"#,
        width - 10.0
    );
    let _ = write!(
        svg,
        r#"<text x="5" y="{top}">{max_v:.0}</text><text x="{}" y="{}">{max_t:.0}s</text>"#,
        width - 40.0,
        bottom + 15.0
    );
    let colors = ["#4c78a8", "#f58518", "#e45756", "#54a24b"];
    for (index, (label, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(t, v)| {
                let x = left + t / max_t * (width - left - 20.0);
                let y = bottom - v / max_v * (bottom - top);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let color = colors[index % colors.len()];
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            path.join(" ")
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            left + 10.0,
            top + 14.0 * (index as f64 + 1.0),
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}
