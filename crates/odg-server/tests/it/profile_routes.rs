//! `GET /debug/pprof/profile`: CPU profiles on the admin listener only, when turned on.

use axum::http::StatusCode;

use crate::support::{cached_demo_service, get_raw};

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, String, String) {
    let answer = get_raw(router, uri).await;
    (answer.status, answer.content_type, answer.body)
}

/// Keeps a core busy in this process until stopped, so a profile recording meanwhile has samples
/// however the machine schedules it.
struct Spinner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

fn spin_for_profile() -> Spinner {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let thread = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut state = 1u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..10_000 {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                state = std::hint::black_box(state);
            }
            state
        }
    });
    Spinner { stop, thread }
}

impl Spinner {
    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

#[tokio::test]
async fn a_profile_is_recorded_on_the_admin_listener_one_at_a_time() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _cache) = cached_demo_service(directory.path()).await;
    let state = odg_server::AppState::new(service).with_profiling(true);
    let admin = odg_server::admin_router(state.clone());
    // never on the API listener, even when turned on
    let (status, content_type, body) =
        get(&odg_server::router(state), "/debug/pprof/profile?seconds=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(content_type, "application/json");

    for (uri, expected) in [
        (
            "/debug/pprof/profile?seconds=0",
            "seconds must be between 1 and 60",
        ),
        (
            "/debug/pprof/profile?seconds=61",
            "seconds must be between 1 and 60",
        ),
        (
            "/debug/pprof/profile?frequency=0",
            "frequency must be between 1 and 1000",
        ),
        ("/debug/pprof/profile?format=pdf", "format"),
    ] {
        let (status, content_type, body) = get(&admin, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(content_type, "application/json", "{uri}");
        assert!(body.contains(expected), "{uri}: {body}");
    }

    let spinner = spin_for_profile();
    let first = tokio::spawn({
        let admin = admin.clone();
        async move {
            get(
                &admin,
                "/debug/pprof/profile?seconds=2&frequency=499&format=folded",
            )
            .await
        }
    });
    // The test runtime has one thread: the first request runs up to its wait for the profiler
    // thread while this task sleeps, so the profiler is taken; a second request is refused.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (status, _, refused) = get(&admin, "/debug/pprof/profile?seconds=1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused.contains("being recorded"), "{refused}");
    let (status, content_type, folded) = first.await.unwrap();
    spinner.stop();
    assert_eq!(status, StatusCode::OK, "{folded}");
    assert_eq!(content_type, "text/plain; charset=utf-8");
    // folded stacks: `thread;frame;...;frame count`, and the spinning test thread is among them
    let lines: Vec<&str> = folded.lines().collect();
    assert!(!lines.is_empty(), "no samples in 2 s of a busy core");
    for line in &lines {
        let (_, count) = line.rsplit_once(' ').unwrap();
        assert!(count.parse::<u64>().unwrap() > 0, "{line}");
    }
    assert!(
        lines.iter().any(|line| line.contains("spin_for_profile")),
        "the busy thread's frames are in the profile"
    );

    // and the flame graph, once the first is done (an SVG even if nothing ran meanwhile)
    let spinner = spin_for_profile();
    let (status, content_type, svg) =
        get(&admin, "/debug/pprof/profile?seconds=1&frequency=499").await;
    spinner.stop();
    assert_eq!(status, StatusCode::OK, "{svg}");
    assert_eq!(content_type, "image/svg+xml");
    assert!(svg.contains("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(
        svg.contains("spin_for_profile"),
        "the flame graph names the busy frames"
    );
}

#[tokio::test]
async fn profiling_answers_404_unless_turned_on() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _cache) = cached_demo_service(directory.path()).await;
    let admin = odg_server::admin_router(odg_server::AppState::new(service));
    let (status, content_type, body) = get(&admin, "/debug/pprof/profile?seconds=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(content_type, "application/json");
    assert!(body.contains("--admin-profiling"), "{body}");
}
