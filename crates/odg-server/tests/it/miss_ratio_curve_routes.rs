//! `GET /cache/miss-ratio-curves`: the cache's curves in full, on the operations router.

use axum::http::StatusCode;

use crate::support::{cached_demo_app, demo_app};

#[tokio::test]
async fn the_curves_count_the_lookups_each_tier_saw() {
    let app = cached_demo_app().await;
    let uri = "/ocm/component?component_name=acme.org/shop/cart&version=1.0.0";
    for _ in 0..3 {
        let (status, _) = app.get(uri).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = app.get("/cache/miss-ratio-curves").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["exported_scales"][2], 1.0);
    let memory = &body["tiers"][0];
    assert_eq!(memory["tier"], "memory");
    assert_eq!(memory["bound_bytes"], 64 << 20);
    assert_eq!(memory["kinds"][0]["kind"], "all");
    let all = &memory["kinds"][0]["curve"];
    let references = all["references"].as_f64().unwrap();
    let cold = all["cold_references"].as_f64().unwrap();
    // the first request missed every kind it looked up; the next two hit the rendered answer
    assert!(references >= 3.0, "{all}");
    assert!(cold >= 1.0 && cold < references, "{all}");
    assert!(!all["buckets"].as_array().unwrap().is_empty(), "{all}");
    // the memory tier's model: miniature simulations of quick_cache at 0.25x..8x of its bound
    let simulated = all["simulated"].as_array().unwrap();
    assert_eq!(simulated.len(), 21, "{all}");
    assert_eq!(simulated[8]["bytes"], f64::from(64 << 20), "{all}");
    assert!(simulated[8]["misses"].as_f64().unwrap() >= 1.0, "{all}");
    // no disk or shared tier configured: only the memory tier has curves
    assert_eq!(body["tiers"].as_array().unwrap().len(), 1);
    let descriptor = memory["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kind| kind["kind"] == "descriptor")
        .unwrap();
    assert!(descriptor["curve"]["references"].as_f64().unwrap() >= 1.0);
}

#[tokio::test]
async fn without_a_cache_the_route_answers_404_in_json() {
    let app = demo_app().await;
    let (status, body) = app.get("/cache/miss-ratio-curves").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["detail"].as_str().is_some() || body["error"].as_str().is_some(),
        "{body}"
    );
}
