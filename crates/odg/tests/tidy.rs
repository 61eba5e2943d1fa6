//! Keeps the house: ARCHITECTURE.md and the code agree, and the workspace-wide rules hold.
//! (In the spirit of rust-analyzer's tidy tests: what the docs claim, a test checks.)
//!
//! - the crate edges in ARCHITECTURE.md's `crate-edges` block are exactly the workspace's normal
//!   dependencies, and no dev-dependency points back up;
//! - every source file is named in its crate's section of the code map;
//! - only `odg-offload` spawns blocking work (clippy's `disallowed-methods` enforces it at build
//!   time; this says where the rule lives);
//! - every production crate denies `unwrap`/`expect` outside tests, and every exception states its
//!   reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that are tests or tools, not the service: `unwrap` there stops a run loudly, as it should.
const TEST_AND_TOOL_CRATES: [&str; 2] = ["odg-test-support", "odg-bench"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn architecture() -> String {
    std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).unwrap()
}

struct WorkspaceCrate {
    directory: PathBuf,
    normal: BTreeSet<String>,
    dev: BTreeSet<String>,
}

/// Workspace crates by name, with their dependencies on other workspace crates.
fn workspace_crates() -> BTreeMap<String, WorkspaceCrate> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|package| package["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|package| {
            let of_kind = |kind: Option<&str>| -> BTreeSet<String> {
                package["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|dependency| dependency["kind"].as_str() == kind)
                    .map(|dependency| dependency["name"].as_str().unwrap().to_string())
                    .filter(|name| names.contains(name))
                    .collect()
            };
            let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
            (
                package["name"].as_str().unwrap().to_string(),
                WorkspaceCrate {
                    directory: manifest.parent().unwrap().to_path_buf(),
                    normal: of_kind(None),
                    dev: of_kind(Some("dev")),
                },
            )
        })
        .collect()
}

/// The `crate-edges` block: `crate -> dependency dependency ...` per line, `#` comments.
fn documented_edges(architecture: &str) -> BTreeMap<String, BTreeSet<String>> {
    let start = architecture
        .find("```crate-edges")
        .expect("ARCHITECTURE.md has a ```crate-edges block");
    let block = &architecture[start..];
    let block = &block[block.find('\n').unwrap() + 1..];
    let block = &block[..block.find("```").unwrap()];
    block
        .lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, dependencies) = line
                .split_once("->")
                .unwrap_or_else(|| panic!("not `crate -> dependencies`: {line}"));
            (
                name.trim().to_string(),
                dependencies
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn crate_edges_are_the_documented_ones() {
    let crates = workspace_crates();
    let documented = documented_edges(&architecture());
    let actual: BTreeMap<String, BTreeSet<String>> = crates
        .iter()
        .map(|(name, krate)| (name.clone(), krate.normal.clone()))
        .collect();
    for (name, dependencies) in &actual {
        let listed = documented.get(name).unwrap_or_else(|| {
            panic!("ARCHITECTURE.md's crate-edges block does not list the crate {name}")
        });
        let undocumented: Vec<_> = dependencies.difference(listed).collect();
        let stale: Vec<_> = listed.difference(dependencies).collect();
        assert!(
            undocumented.is_empty() && stale.is_empty(),
            "{name}: depends on {undocumented:?} without ARCHITECTURE.md saying so; \
             ARCHITECTURE.md lists {stale:?} that it does not depend on"
        );
    }
    for name in documented.keys() {
        assert!(
            actual.contains_key(name),
            "ARCHITECTURE.md lists {name}, no such crate"
        );
    }
}

/// Everything `name` depends on, directly or not, through normal dependencies.
fn below(crates: &BTreeMap<String, WorkspaceCrate>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![name.to_string()];
    while let Some(next) = stack.pop() {
        for dependency in &crates[&next].normal {
            if seen.insert(dependency.clone()) {
                stack.push(dependency.clone());
            }
        }
    }
    seen
}

#[test]
fn dev_dependencies_point_down_too() {
    let crates = workspace_crates();
    for (name, krate) in &crates {
        for dependency in &krate.dev {
            // cargo allows a dev-dependency on a crate that depends on this one; we do not: the
            // tests of a layer must not need the layers above it
            assert!(
                !below(&crates, dependency).contains(name),
                "{name}'s tests depend on {dependency}, which depends on {name}"
            );
        }
    }
}

fn rust_files(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The code map's section of `name`: from its `### ...` heading naming it to the next heading.
fn code_map_section<'a>(architecture: &'a str, name: &str) -> Option<&'a str> {
    let token = format!("`{name}`");
    let mut sections = architecture.split("\n### ").skip(1);
    sections
        .find(|section| {
            section
                .lines()
                .next()
                .is_some_and(|heading| heading.contains(&token))
        })
        .map(|section| section.split("\n## ").next().unwrap_or(section))
}

#[test]
fn every_source_file_is_in_the_code_map() {
    let architecture = architecture();
    let mut missing = Vec::new();
    for (name, krate) in workspace_crates() {
        let Some(section) = code_map_section(&architecture, &name) else {
            missing.push(format!("{name}: no `### ` section naming it"));
            continue;
        };
        let source = krate.directory.join("src");
        for file in rust_files(&source) {
            let relative = file
                .strip_prefix(&source)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if relative == "lib.rs" || relative == "main.rs" {
                continue;
            }
            let file_name = file.file_name().unwrap().to_string_lossy().to_string();
            let mut names = vec![relative.clone(), file_name.clone()];
            // `x_tests.rs` is the unit-test module of `x.rs`; `dir/mod.rs` is the module `dir/`
            if let Some(tested) = file_name.strip_suffix("_tests.rs") {
                names.push(format!("{tested}.rs"));
            }
            if let Some(directory) = relative.strip_suffix("mod.rs") {
                names.push(directory.to_string());
            }
            let named = names
                .iter()
                .any(|name| section.contains(&format!("`{name}`")));
            if !named {
                missing.push(format!("{name}: src/{relative}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "source files not in ARCHITECTURE.md's code map (name each, in backticks, in its \
         crate's section):\n{}",
        missing.join("\n")
    );
}

#[test]
fn only_odg_offload_spawns_blocking_work() {
    let clippy = std::fs::read_to_string(workspace_root().join("clippy.toml")).unwrap();
    assert!(
        clippy.contains("tokio::task::spawn_blocking"),
        "clippy.toml: {clippy}"
    );
    let mut offenders = Vec::new();
    for (name, krate) in workspace_crates() {
        if name == "odg-offload" {
            continue;
        }
        for file in rust_files(&krate.directory) {
            let text = std::fs::read_to_string(&file).unwrap();
            // spelled in two parts so that this file does not find itself
            if text.contains(concat!("spawn_", "blocking(")) {
                offenders.push(file.display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "spawn_blocking outside odg-offload: {offenders:?}"
    );
}

#[test]
fn production_crates_deny_unwrap_and_every_exception_has_a_reason() {
    let mut problems = Vec::new();
    for (name, krate) in workspace_crates() {
        let source = krate.directory.join("src");
        if !TEST_AND_TOOL_CRATES.contains(&name.as_str()) {
            let root = ["lib.rs", "main.rs"]
                .iter()
                .map(|file| source.join(file))
                .find(|path| path.is_file())
                .unwrap();
            let text = std::fs::read_to_string(&root).unwrap();
            if !text
                .contains("#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]")
            {
                problems.push(format!("{}: does not deny unwrap/expect", root.display()));
            }
        }
        for file in rust_files(&source) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (index, line) in text.lines().enumerate() {
                let allows = line.contains("allow(clippy::expect_used")
                    || line.contains("allow(clippy::unwrap_used");
                // the reason may follow on the next lines of the attribute
                let attribute: String = text.lines().skip(index).take(4).collect();
                if allows && !line.contains("#![") && !attribute.contains("reason = ") {
                    problems.push(format!(
                        "{}:{}: an exception without a reason",
                        file.display(),
                        index + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `[default: ...]` and `[env: ...]` of one flag in `odg serve --help` (clap's long help puts
/// each flag's paragraph after a line starting with the flag).
fn help_of_flag<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    let start = help.find(&format!("  {flag} "))?;
    let rest = &help[start..];
    let end = rest[2..].find("\n  --").map_or(rest.len(), |end| end + 2);
    Some(&rest[..end])
}

fn bracketed<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let start = text.find(&format!("[{label}: "))? + label.len() + 3;
    let end = text[start..].find(']')? + start;
    Some(&text[start..end])
}

/// Defaults are defined once, in code; the help text is derived from them, and the README's flag
/// tables must say what the help says (they had drifted before: a file option documented as
/// `adaptive` by default while the code said `fixed`).
#[test]
fn the_readme_flag_tables_state_the_defaults_and_variables_of_odg_serve_help() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_odg"));
    // clap shows a variable's value from the environment; the test must see the defaults
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ODG_") {
            command.env_remove(name);
        }
    }
    let output = command.args(["serve", "--help"]).output().unwrap();
    assert!(output.status.success());
    // clap wraps long help at the terminal width; joining lines keeps bracketed values whole
    let help = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("--") || line.trim_start().starts_with("-h") {
                format!("\n  {}", line.trim())
            } else {
                format!(" {}", line.trim())
            }
        })
        .collect::<String>();
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let mut rows = 0;
    let mut problems = Vec::new();
    for row in readme.lines().filter(|line| line.starts_with("| `--")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let [_, flag, variable, _file_key, default, ..] = cells[..] else {
            problems.push(format!(
                "row without flag, variable, file key and default: {row}"
            ));
            continue;
        };
        rows += 1;
        let flag = flag.trim_matches('`');
        let variable = variable.trim_matches('`');
        let Some(paragraph) = help_of_flag(&help, flag) else {
            problems.push(format!("{flag}: in the README, not in `odg serve --help`"));
            continue;
        };
        // `NAME=value` when the variable is set (an empty value included)
        let help_variable =
            bracketed(paragraph, "env").map(|env| env.split('=').next().unwrap_or(env));
        if help_variable != Some(variable) {
            problems.push(format!(
                "{flag}: README says {variable}, the help {:?}",
                bracketed(paragraph, "env")
            ));
        }
        match bracketed(paragraph, "default") {
            Some(help_default) if help_default.contains(default.trim_matches('`')) => {}
            other => problems.push(format!(
                "{flag}: README's default {default:?}, the help's {other:?}"
            )),
        }
    }
    assert!(rows >= 9, "the README's flag tables were not found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
