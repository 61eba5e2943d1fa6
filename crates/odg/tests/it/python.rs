//! The independent reference client: `tests/python/ocm_interop.py` around the Python OCM library
//! (gardener-ocm), run with `ODG_PYTHON` or the venv `scripts/test.sh` creates.
//!
//! Many queries run in **one** interpreter: a tiny driver imports the script and calls its `main(argv)`
//! once per command, capturing what each call prints. That is exactly the CLI's code path (argument
//! parsing, client setup, JSON output, exit code) without paying the library's import time per query.

use std::path::PathBuf;

use serde_json::Value;

use crate::harness::{run_bounded, run_within, workspace_root};

/// Longest run of the browser session (a login, a landing page, a component and its tabs, each
/// waiting for the network to settle): a bound against hangs, not a speed requirement.
const DASHBOARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `ocm_interop.main(argv)` for each argv of `sys.argv[2]` (a JSON list), with logging set up
/// once towards the real stderr, and prints `[{rc, stdout, stderr}, ...]` as JSON.
const BATCH_DRIVER: &str = r#"
import contextlib, io, json, logging, sys
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
import ocm_interop
results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = ocm_interop.main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
    results.append({'argv': argv, 'rc': rc, 'stdout': out.getvalue(), 'stderr': err.getvalue()})
sys.stdout.write(json.dumps(results))
"#;

/// One query of the library, as a subcommand of the script.
#[derive(Debug, Clone)]
pub enum Query {
    Read { name: String, version: String },
    Versions { name: String },
    Dependencies { name: String, version: String },
}

impl Query {
    pub fn read(name: &str, version: &str) -> Query {
        Query::Read {
            name: name.into(),
            version: version.into(),
        }
    }

    pub fn versions(name: &str) -> Query {
        Query::Versions { name: name.into() }
    }

    pub fn dependencies(name: &str, version: &str) -> Query {
        Query::Dependencies {
            name: name.into(),
            version: version.into(),
        }
    }

    fn argv(&self, repository: &str) -> Vec<String> {
        let mut argv: Vec<String> = match self {
            Query::Read { name, version } => vec![
                "read".into(),
                "--name".into(),
                name.clone(),
                "--version".into(),
                version.clone(),
            ],
            Query::Versions { name } => vec!["versions".into(), "--name".into(), name.clone()],
            Query::Dependencies { name, version } => vec![
                "dependencies".into(),
                "--name".into(),
                name.clone(),
                "--version".into(),
                version.clone(),
            ],
        };
        argv.extend(["--repo".into(), repository.into()]);
        argv
    }
}

/// What one call of the script's `main` did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub argv: Vec<String>,
    pub rc: i64,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The JSON the subcommand printed; panics (with the library's error) if it failed.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.rc, 0,
            "ocm_interop.py {:?} failed: {}",
            self.argv, self.stderr
        );
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "ocm_interop.py {:?} printed no JSON ({error}): {}",
                self.argv, self.stdout
            )
        })
    }
}

pub struct PythonLibrary {
    interpreter: PathBuf,
    script: PathBuf,
}

impl PythonLibrary {
    /// The interpreter from `ODG_PYTHON`, else `target/python-venv/bin/python`; a missing one fails
    /// the test (these tests are the interoperability proof and must not silently skip).
    pub fn locate() -> PythonLibrary {
        let root = workspace_root();
        let script = root.join("tests/python/ocm_interop.py");
        assert!(script.is_file(), "{} is missing", script.display());
        let interpreter = match std::env::var_os("ODG_PYTHON") {
            Some(path) => {
                let path = PathBuf::from(path);
                assert!(
                    path.exists(),
                    "ODG_PYTHON={} does not exist: run `bash scripts/test.sh` (it creates \
                     target/python-venv with gardener-ocm and exports ODG_PYTHON), or unset it",
                    path.display()
                );
                path
            }
            None => {
                let venv = root.join("target/python-venv/bin/python");
                assert!(
                    venv.exists(),
                    "the Python OCM library is needed for the interoperability tests, but neither \
                     ODG_PYTHON is set nor {} exists: run `bash scripts/test.sh` once (it installs \
                     gardener-ocm into target/python-venv), or point ODG_PYTHON at a Python with \
                     gardener-ocm and gardener-oci installed",
                    venv.display()
                );
                venv
            }
        };
        PythonLibrary {
            interpreter,
            script,
        }
    }

    fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.interpreter);
        command
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(std::process::Stdio::null());
        command
    }

    /// `ocm_interop.py upload --repo REPOSITORY FILES...` (the CLI itself); returns `uploaded`.
    pub async fn upload(&self, repository: &str, files: &[PathBuf]) -> Vec<Value> {
        let mut command = self.command();
        command
            .arg(&self.script)
            .arg("upload")
            .arg("--repo")
            .arg(repository)
            .args(files);
        let output = run_bounded(command, "ocm_interop.py upload").await;
        assert!(
            output.status.success(),
            "ocm_interop.py upload failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let body: Value = serde_json::from_slice(&output.stdout).expect("upload prints JSON");
        body["uploaded"]
            .as_array()
            .expect("upload prints {uploaded: [...]}")
            .clone()
    }

    /// `tests/python/odg_client_login.py ARGS...`: the original's `odg_client`, unchanged, logging
    /// in with a GitHub token and writing, querying and deleting metadata; returns what it printed.
    pub async fn odg_client_login(&self, args: &[&str]) -> Value {
        let script = self
            .script
            .parent()
            .expect("the script has a directory")
            .join("odg_client_login.py");
        let mut command = self.command();
        command.arg(&script).args(args);
        let output = run_bounded(command, "odg_client_login.py").await;
        assert!(
            output.status.success(),
            "odg_client_login.py failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "odg_client_login.py printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// `tests/dashboard/drive.py ARGS...`: the Delivery Dashboard in headless Chromium (Playwright
    /// driving the system's `chromium`); returns what it printed (pages, failed requests, console
    /// errors).
    pub async fn drive_dashboard(&self, args: &[&str]) -> Value {
        let script = workspace_root().join("tests/dashboard/drive.py");
        let mut command = self.command();
        command.arg(&script).args(args);
        let output = run_within(command, "drive.py", DASHBOARD_TIMEOUT).await;
        assert!(
            output.status.success(),
            "drive.py failed ({}): {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "drive.py printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs every query against `repository` in one interpreter; outcomes in query order.
    pub async fn run(&self, repository: &str, queries: &[Query]) -> Vec<Outcome> {
        let argvs: Vec<Vec<String>> = queries.iter().map(|q| q.argv(repository)).collect();
        let script_dir = self.script.parent().expect("the script has a directory");
        let mut command = self.command();
        command
            .arg("-c")
            .arg(BATCH_DRIVER)
            .arg(script_dir)
            .arg(serde_json::to_string(&argvs).expect("argv lists serialise"));
        let output = run_bounded(command, "ocm_interop.py (batch)").await;
        assert!(
            output.status.success(),
            "the ocm_interop.py batch driver failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "the batch driver printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        assert_eq!(results.len(), queries.len());
        results
            .into_iter()
            .map(|result| Outcome {
                argv: serde_json::from_value(result["argv"].clone()).expect("argv"),
                rc: result["rc"].as_i64().unwrap_or(-1),
                stdout: result["stdout"].as_str().unwrap_or_default().to_owned(),
                stderr: result["stderr"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// [`PythonLibrary::run`], every query required to succeed; their JSON in query order.
    pub async fn query(&self, repository: &str, queries: &[Query]) -> Vec<Value> {
        self.run(repository, queries)
            .await
            .iter()
            .map(Outcome::json)
            .collect()
    }
}
