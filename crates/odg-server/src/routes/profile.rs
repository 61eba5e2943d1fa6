//! `GET /debug/pprof/profile?seconds=N`: a CPU profile of the whole process, on the admin
//! listener only and only when the operator turned it on (`--admin-profiling`).
//!
//! The sampler is pprof-rs: a `SIGPROF` timer that records the interrupted thread's stack, so
//! every thread is seen (async workers, the CPU pool, the blocking pool) without stopping any.
//! The answer is a flame graph (SVG) or, with `format=folded`, the folded stacks that
//! `inferno-flamegraph` and `flamegraph.pl` read, for diffing two profiles.
//!
//! One profile at a time: the timer is process-wide, and a second profiler would only halve
//! both sample rates. Recording runs on its own thread (it sleeps for the duration, which must not
//! hold a slot of the CPU pool or an async worker), and so does building the report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::params::Params;
use crate::{ApiError, AppState};

/// Longest profile one request may ask for: long enough for a load test's steady state, short
/// enough that a forgotten request does not keep the timer running.
pub const MAX_SECONDS: u64 = 60;
const DEFAULT_SECONDS: u64 = 10;
/// 99 Hz, as Go's and Linux perf's defaults, so samples do not beat with 100 Hz timers.
const DEFAULT_FREQUENCY: u32 = 99;
const MAX_FREQUENCY: u32 = 1_000;
/// Frames of the C runtime and the unwinder itself, which say nothing about where odg spends.
const BLOCKLIST: &[&str] = &["libc", "libgcc", "pthread", "vdso"];

const NO_SAMPLES_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"40\"><text x=\"10\" y=\"25\" font-family=\"monospace\">no samples: the process used no CPU while the profile recorded</text></svg>\n";

static RECORDING: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProfileFormat {
    /// A flame graph, viewable in a browser.
    #[default]
    Svg,
    /// One line per distinct stack: `frame;frame;frame count`.
    Folded,
}

#[derive(Debug, Deserialize)]
pub struct ProfileParams {
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    frequency: Option<u32>,
    #[serde(default)]
    format: ProfileFormat,
}

/// Releases the one-profile-at-a-time flag however the recording ends.
struct RecordingSlot;

impl RecordingSlot {
    fn take() -> Option<RecordingSlot> {
        RECORDING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            .then_some(RecordingSlot)
    }
}

impl Drop for RecordingSlot {
    fn drop(&mut self) {
        RECORDING.store(false, Ordering::Release);
    }
}

pub async fn profile(
    State(state): State<AppState>,
    Params(params): Params<ProfileParams>,
) -> Result<Response, ApiError> {
    if !state.profiling {
        return Err(ApiError::not_found(
            "profiling is not enabled on this listener (odg serve --admin-profiling)",
        ));
    }
    let seconds = params.seconds.unwrap_or(DEFAULT_SECONDS);
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return Err(ApiError::bad_request(format!(
            "seconds must be between 1 and {MAX_SECONDS}"
        )));
    }
    let frequency = params.frequency.unwrap_or(DEFAULT_FREQUENCY);
    if !(1..=MAX_FREQUENCY).contains(&frequency) {
        return Err(ApiError::bad_request(format!(
            "frequency must be between 1 and {MAX_FREQUENCY} (samples per second)"
        )));
    }
    let Some(slot) = RecordingSlot::take() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a profile is being recorded; ask again when it is done",
        ));
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let format = params.format;
    let spawned = std::thread::Builder::new()
        .name("odg-profiler".into())
        .spawn(move || {
            let _slot = slot;
            let _ = sender.send(record(Duration::from_secs(seconds), frequency, format));
        });
    if spawned.is_err() {
        return Err(ApiError::internal("could not start the profiler thread"));
    }
    let (content_type, body) = receiver
        .await
        .map_err(|_| ApiError::internal("the profiler thread ended without a profile"))?
        .map_err(|error| ApiError::internal(format!("profiling failed: {error}")))?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Samples the process for `duration` and renders the report; blocking.
fn record(
    duration: Duration,
    frequency: u32,
    format: ProfileFormat,
) -> Result<(&'static str, Vec<u8>), pprof::Error> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(frequency as i32)
        .blocklist(BLOCKLIST)
        .build()?;
    std::thread::sleep(duration);
    let report = guard.report().build()?;
    drop(guard);
    match format {
        // A process that was idle throughout has no samples, and no flame graph to draw: say so
        // in an SVG rather than answering an empty body.
        ProfileFormat::Svg if report.data.is_empty() => {
            Ok(("image/svg+xml", NO_SAMPLES_SVG.into()))
        }
        ProfileFormat::Svg => {
            let mut svg = Vec::new();
            report.flamegraph(&mut svg)?;
            Ok(("image/svg+xml", svg))
        }
        ProfileFormat::Folded => {
            let mut folded = String::new();
            for (frames, count) in &report.data {
                folded.push_str(&folded_line(frames));
                folded.push(' ');
                folded.push_str(&count.to_string());
                folded.push('\n');
            }
            Ok(("text/plain; charset=utf-8", folded.into_bytes()))
        }
    }
}

/// A stack as the folded format writes it: the thread's name, then frames outermost first.
fn folded_line(frames: &pprof::Frames) -> String {
    let mut line = frames.thread_name_or_id();
    for frame in frames.frames.iter().rev() {
        for symbol in frame.iter().rev() {
            line.push(';');
            line.push_str(&symbol.name());
        }
    }
    line
}
