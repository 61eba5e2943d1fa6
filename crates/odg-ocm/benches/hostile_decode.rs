//! Decode time of hostile and ordinary descriptor documents of about 200 KB, through the decoder
//! (`parse_descriptor_document`) and, for comparison, through the bare YAML parser that the decoder
//! used to hand them to directly. `cargo bench -p odg-ocm --bench hostile_decode [-- --with-bare-parser]`;
//! the bare parser takes tens of seconds on the deep documents, so it runs only when asked.

use std::time::{Duration, Instant};

use odg_ocm::{parse_descriptor_document, DecodeLimits};

const DEPTH: usize = 100_000;

fn main() {
    let with_bare_parser = std::env::args().any(|argument| argument == "--with-bare-parser");
    let header = "meta:\n  schemaVersion: v2\ncomponent:\n  name: a.b/c\n  version: '1'\n  provider: p\n  repositoryContexts: []\n  resources: []\n  sources: []\n  componentReferences: []\n";
    let brackets = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let maps = format!("{}{}", "{a: ".repeat(DEPTH / 2), "}".repeat(DEPTH / 2));
    let ordinary_labels: String = (0..2_000)
        .map(|index| {
            format!(
                "  - name: label-{index}\n    value: {{key: [a, b, '{index}'], other: \"text\"}}\n"
            )
        })
        .collect();
    // nested `depth` deep, over and over to `bytes`: dense in tokens, as deep as allowed or flat
    let repeated_nesting = |depth: usize, bytes: usize| {
        let unit = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        vec![unit; bytes / (2 * depth + 2)].join(", ")
    };
    let documents = [
        (
            "label value of [ x 60 then ] x 60, repeated to 200 KB",
            format!(
                "{header}  labels:\n  - name: x\n    value: [{}]\n",
                repeated_nesting(60, 200_000)
            ),
        ),
        (
            "label value of [] repeated to 200 KB",
            format!(
                "{header}  labels:\n  - name: x\n    value: [{}]\n",
                repeated_nesting(1, 200_000)
            ),
        ),
        (
            "label value of [ x 60 then ] x 60, repeated to 4 MB",
            format!(
                "{header}  labels:\n  - name: x\n    value: [{}]\n",
                repeated_nesting(60, 4_000_000)
            ),
        ),
        (
            "label value [ x 100,000 then ] x 100,000",
            format!("{header}  labels:\n  - name: x\n    value: {brackets}\n"),
        ),
        (
            "label value {a: x 50,000 then } x 50,000",
            format!("{header}  labels:\n  - name: x\n    value: {maps}\n"),
        ),
        (
            "ordinary descriptor with 2,000 labels",
            format!("{header}  labels:\n{ordinary_labels}"),
        ),
    ];
    let limits = DecodeLimits::default();
    for (name, document) in &documents {
        let (elapsed, outcome) =
            best_of(5, || match parse_descriptor_document(document, &limits) {
                Ok(_) => "decoded".to_owned(),
                Err(error) => format!("refused: {error}"),
            });
        println!(
            "decoder      {name} ({} bytes): {elapsed:?}, {outcome}",
            document.len()
        );
        if with_bare_parser {
            let (elapsed, outcome) = best_of(1, || {
                match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(document) {
                    Ok(_) => "parsed".to_owned(),
                    Err(error) => format!("refused: {error}"),
                }
            });
            println!(
                "bare parser  {name} ({} bytes): {elapsed:?}, {outcome}",
                document.len()
            );
        }
    }
}

fn best_of(runs: usize, mut run: impl FnMut() -> String) -> (Duration, String) {
    let mut best = Duration::MAX;
    let mut outcome = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        outcome = run();
        best = best.min(started.elapsed());
    }
    (best, outcome)
}
