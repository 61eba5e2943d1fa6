//! The outermost layer every API request passes, doing in one service what would otherwise be
//! four tower layers, each with its own future, allocations and header work on every request:
//!
//! - the request id: the caller's `X-Request-Id`, or a fresh UUID v4, on the request (for the
//!   layers and handlers below) and returned on the answer;
//! - the request's span (`request`: method, path, request id), entered whenever its work runs,
//!   and the answer's log line: `debug` for every answer, `error` for a failure (5xx other than
//!   the 503 of a shed request, which `/metrics` counts and which would flood the log exactly
//!   when the pod is overloaded);
//! - CORS: a request with an `Origin` header, and every preflight, goes through tower-http's
//!   [`CorsLayer`]; a request without one (every non-browser client: scanners, `odg_client`,
//!   curl) gets the headers that layer adds to such a request, captured once from the layer
//!   itself at start-up, without the per-request header map the layer builds.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use futures::future::Either;
use futures::FutureExt as _;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::cors::{Cors, CorsLayer};
use tracing::instrument::Instrumented;
use tracing::Instrument as _;

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The headers `cors` adds to the answer of a request without `Origin`, found by passing such a
/// request through it once. They do not depend on the request otherwise: without an origin no
/// origin is allowed or credentialed, and the `Vary` and exposed-headers lists are fixed.
/// `None` if the layer did not answer at once (then every request goes through it).
fn headers_without_origin(cors: &CorsLayer) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let mut probe = cors.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let request = Request::get("/").body(()).ok()?;
    let Ok(response) = probe.call(request).now_or_never()?;
    Some(
        response
            .headers()
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    )
}

#[derive(Clone)]
pub(crate) struct FrontDoorLayer {
    cors: CorsLayer,
    without_origin: Option<Arc<[(HeaderName, HeaderValue)]>>,
}

impl FrontDoorLayer {
    pub(crate) fn new(cors: CorsLayer) -> Self {
        let without_origin = headers_without_origin(&cors).map(Arc::from);
        FrontDoorLayer {
            cors,
            without_origin,
        }
    }
}

impl<S> Layer<S> for FrontDoorLayer {
    type Service = FrontDoor<S>;

    fn layer(&self, inner: S) -> FrontDoor<S> {
        FrontDoor {
            inner,
            cors: Arc::new(self.cors.clone()),
            without_origin: self.without_origin.clone(),
        }
    }
}

/// Cloned for every request (axum clones a route's service to call it), so it holds the CORS
/// layer, whose clone allocates, behind an `Arc`; a `Cors` service is made only for a request
/// that needs one.
#[derive(Clone)]
pub(crate) struct FrontDoor<S> {
    inner: S,
    cors: Arc<CorsLayer>,
    without_origin: Option<Arc<[(HeaderName, HeaderValue)]>>,
}

impl<S, B> Service<Request> for FrontDoor<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible> + Clone,
    B: Default,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = FrontDoorFuture<<Cors<S> as Service<Request>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let request_id = match request.headers().get(X_REQUEST_ID) {
            Some(given) => given.clone(),
            None => {
                let made = new_request_id();
                request.headers_mut().insert(X_REQUEST_ID, made.clone());
                made
            }
        };
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %request_id.to_str().unwrap_or("-"),
        );
        let without_origin = match &self.without_origin {
            Some(headers)
                if request.method() != Method::OPTIONS
                    && !request.headers().contains_key(header::ORIGIN) =>
            {
                Some(headers.clone())
            }
            _ => None,
        };
        let inner = match &without_origin {
            None => {
                // `inner` was made ready for this call; the clone in `Cors` takes its place
                // (the services here are axum's routers and layers, always ready)
                let inner = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, inner);
                Either::Left(self.cors.layer(inner).call(request))
            }
            Some(_) => Either::Right(self.inner.call(request)),
        };
        FrontDoorFuture {
            inner: inner.instrument(span),
            request_id: Some(request_id),
            cors_headers: without_origin,
            started: Instant::now(),
        }
    }
}

fn milliseconds_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

fn new_request_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    // a UUID is always a valid header value
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

pin_project! {
    pub(crate) struct FrontDoorFuture<C, P> {
        #[pin]
        inner: Instrumented<Either<C, P>>,
        request_id: Option<HeaderValue>,
        cors_headers: Option<Arc<[(HeaderName, HeaderValue)]>>,
        started: Instant,
    }
}

impl<C, P, B> Future for FrontDoorFuture<C, P>
where
    C: Future<Output = Result<Response<B>, Infallible>>,
    P: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.as_mut().poll(cx));
        let headers = response.headers_mut();
        if let Some(cors_headers) = this.cors_headers.take() {
            for (name, value) in cors_headers.iter() {
                // as the CORS layer does: `Vary` adds to the handler's, the others replace
                if name == header::VARY {
                    headers.append(name.clone(), value.clone());
                } else {
                    headers.insert(name.clone(), value.clone());
                }
            }
        }
        if let Some(request_id) = this.request_id.take() {
            if !headers.contains_key(X_REQUEST_ID) {
                headers.insert(X_REQUEST_ID, request_id);
            }
        }
        let status = response.status();
        // The span is the events' parent, not entered: neither entering it nor the latency's
        // clock read costs anything when the event is filtered out (fields are evaluated only
        // for an enabled event).
        let span = this.inner.span();
        let started = *this.started;
        if status.is_server_error() && status != axum::http::StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(
                parent: span,
                status = status.as_u16(),
                latency_ms = milliseconds_since(started),
                "response failed"
            );
        } else {
            tracing::debug!(
                parent: span,
                status = status.as_u16(),
                latency_ms = milliseconds_since(started),
                "finished processing request"
            );
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cors::CorsConfig;
    use std::time::Duration;

    /// What the CORS layer itself adds to an answer of `request`.
    fn through_cors(layer: &CorsLayer, request: Request<()>) -> Vec<(HeaderName, HeaderValue)> {
        let mut service = layer.layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
        let response = service.call(request).now_or_never().unwrap().unwrap();
        let mut headers: Vec<_> = response
            .headers()
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        headers
    }

    #[test]
    fn without_origin_the_captured_headers_are_what_the_cors_layer_adds() {
        for origins in [vec![], vec!["https://dashboard.example.org"]] {
            let config = CorsConfig::new(origins, Duration::from_secs(600)).unwrap();
            let layer = config.layer();
            let mut captured = headers_without_origin(&layer).unwrap();
            captured.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            assert!(captured.iter().any(|(name, _)| name == header::VARY));
            let requests = [
                Request::get("/ocm/component?component_name=a").body(()),
                Request::post("/artefacts/metadata/query")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::AUTHORIZATION, "Bearer x")
                    .body(()),
                Request::delete("/cache")
                    .header("access-control-request-method", "GET")
                    .body(()),
            ];
            for request in requests {
                assert_eq!(through_cors(&layer, request.unwrap()), captured);
            }
        }
    }
}
