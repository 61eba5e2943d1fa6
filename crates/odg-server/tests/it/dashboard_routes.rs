//! A built dashboard served on the API's origin (`AppState::with_dashboard_dir`): its files, its
//! `dynamic/config.js` pointing at the page's own origin, API routes winning over files, nothing
//! outside the directory reachable, and no dashboard meaning the JSON 404 as before.

use axum::http::StatusCode;
use axum::Router;

use crate::support::{get_raw as get, metadata_state};

/// `root/public` is the dashboard (an `index.html`, a script); `root/secret.txt` lies beside it.
async fn dashboard_router(root: &std::path::Path, with_dashboard: bool) -> Router {
    let public = root.join("public");
    std::fs::create_dir_all(public.join("static/js")).unwrap();
    std::fs::write(public.join("index.html"), "<html>the dashboard</html>").unwrap();
    std::fs::write(public.join("static/js/main.js"), "console.log('ui')").unwrap();
    // a file named like an API route must not shadow the route
    std::fs::write(public.join("features"), "not the features").unwrap();
    std::fs::write(root.join("secret.txt"), "the secret").unwrap();
    let state = metadata_state(&root.join("state")).await;
    let state = if with_dashboard {
        state.with_dashboard_dir(Some(public))
    } else {
        state
    };
    odg_server::router(state)
}

#[tokio::test]
async fn the_dashboard_files_and_its_config_are_served_and_api_routes_win() {
    let directory = tempfile::tempdir().unwrap();
    let router = dashboard_router(directory.path(), true).await;

    let index = get(&router, "/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(
        index.content_type.starts_with("text/html"),
        "{}",
        index.content_type
    );
    assert_eq!(index.body, "<html>the dashboard</html>");
    let script = get(&router, "/static/js/main.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.content_type.contains("javascript"),
        "{}",
        script.content_type
    );

    let config = get(&router, "/dynamic/config.js").await;
    assert_eq!(config.status, StatusCode::OK);
    assert!(config.content_type.starts_with("text/javascript"));
    assert!(
        config
            .body
            .contains("window.REACT_APP_DELIVERY_SERVICE_API_URL = window.location.origin;"),
        "{}",
        config.body
    );

    let features = get(&router, "/features").await;
    assert_eq!(features.status, StatusCode::OK);
    assert_eq!(features.content_type, "application/json");
    assert!(features.body.contains("delivery-db"), "{}", features.body);

    let missing = get(&router, "/static/js/absent.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.content_type, "application/json");
}

#[tokio::test]
async fn nothing_outside_the_dashboard_directory_is_served() {
    let directory = tempfile::tempdir().unwrap();
    let router = dashboard_router(directory.path(), true).await;
    for uri in [
        "/../secret.txt",
        "/static/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/static/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        &format!("/{}", directory.path().join("secret.txt").display()),
        &format!("//{}", directory.path().join("secret.txt").display()),
    ] {
        let answer = get(&router, uri).await;
        assert!(
            !answer.body.contains("the secret"),
            "{uri} escaped the directory: {} {}",
            answer.status,
            answer.body
        );
        assert!(answer.status.is_client_error(), "{uri}: {}", answer.status);
    }
}

#[tokio::test]
async fn without_a_dashboard_unknown_paths_stay_the_json_404() {
    let directory = tempfile::tempdir().unwrap();
    let router = dashboard_router(directory.path(), false).await;
    for uri in ["/", "/index.html", "/dynamic/config.js"] {
        let answer = get(&router, uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.content_type, "application/json", "{uri}");
    }
}
