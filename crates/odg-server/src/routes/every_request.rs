//! The steps every request takes inside the front door, as one service with one concrete
//! future (axum's `from_fn` and tower-http's panic guard would each box a future, clone the
//! service behind them and move the request's future around on every request):
//!
//! - the original's cache switches (a bad value is the same 400 everywhere) and the
//!   [`CacheMode`] the request runs in, as a request extension and a task-local;
//! - the body's coding checked and canonicalised, and a coded body decoded as the handler reads
//!   it (tower-http's request decompression, put in front of the routes only for such a
//!   request: around every request it would box each request and answer body);
//! - a panic in a handler is logged and answered with a JSON 500, and the service keeps serving;
//! - any error answer made JSON (only then is a future boxed: to read the plain-text body).

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, CatchUnwind};
use futures::FutureExt as _;
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower::util::MapRequest;
use tower::{Layer, Service};
use tower_http::decompression::{DecompressionBody, RequestDecompression};

use odg_cache::CacheMode;

use super::{cache_mode_of, json_errors, request_encoding};
use crate::ApiError;

#[derive(Clone, Copy)]
pub(super) struct EveryRequestLayer;

impl<S> Layer<S> for EveryRequestLayer {
    type Service = EveryRequest<S>;

    fn layer(&self, inner: S) -> EveryRequest<S> {
        EveryRequest { inner }
    }
}

#[derive(Clone)]
pub(super) struct EveryRequest<S> {
    inner: S,
}

/// The routes behind the body decoder, which hands them its decoding body as axum's.
type Decoding<S> =
    RequestDecompression<MapRequest<S, fn(Request<DecompressionBody<Body>>) -> Request>>;

fn with_axum_body(request: Request<DecompressionBody<Body>>) -> Request {
    request.map(Body::new)
}

impl<S> Service<Request> for EveryRequest<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EveryRequestFuture<S::Future, <Decoding<S> as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let mode = match cache_mode_of(&request) {
            Ok(mode) => mode,
            Err(error) => return EveryRequestFuture::answered(error.into_response()),
        };
        request.extensions_mut().insert(mode);
        let coding = match request_encoding::checked_coding(&mut request) {
            Ok(coding) => coding,
            Err(message) => {
                return EveryRequestFuture::answered(request_encoding::unsupported(message))
            }
        };
        let inner = &mut self.inner;
        let called = catch_unwind(AssertUnwindSafe(|| match coding {
            None => Routes::Plain {
                future: inner.call(request),
            },
            Some(_) => {
                // `inner` was made ready for this call; the clone takes its place (the routes
                // are axum's router, always ready)
                let ready = std::mem::replace(inner, inner.clone());
                Routes::Decoding {
                    future: request_encoding::decompression()
                        .layer(MapRequest::new(
                            ready,
                            with_axum_body as fn(Request<DecompressionBody<Body>>) -> Request,
                        ))
                        .call(request),
                }
            }
        }));
        match called {
            Ok(future) => EveryRequestFuture {
                state: State::Running {
                    future: AssertUnwindSafe(odg_components::with_cache_mode(mode, future))
                        .catch_unwind(),
                    coding,
                },
            },
            Err(panic) => EveryRequestFuture::answered(panic_response(panic)),
        }
    }
}

pin_project! {
    /// The routes' answer, from the routes themselves or through the body decoder.
    #[project = RoutesProjection]
    pub(super) enum Routes<P, D> {
        Plain { #[pin] future: P },
        Decoding { #[pin] future: D },
    }
}

impl<P, D, B> Future for Routes<P, D>
where
    P: Future<Output = Result<Response, Infallible>>,
    D: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RoutesProjection::Plain { future } => future.poll(cx),
            RoutesProjection::Decoding { future } => future
                .poll(cx)
                .map(|answer| answer.map(|response| response.map(Body::new))),
        }
    }
}

pin_project! {
    pub(super) struct EveryRequestFuture<P, D> {
        #[pin]
        state: State<P, D>,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<P, D> {
        Running {
            #[pin]
            future: CatchUnwind<AssertUnwindSafe<TaskLocalFuture<CacheMode, Routes<P, D>>>>,
            coding: Option<&'static str>,
        },
        /// An error answer whose body is being read to be made JSON.
        MakingJson { future: BoxFuture<'static, Response> },
        Answered { response: Option<Response> },
    }
}

impl<P, D> EveryRequestFuture<P, D> {
    fn answered(response: Response) -> Self {
        EveryRequestFuture {
            state: State::Answered {
                response: Some(response),
            },
        }
    }
}

impl<P, D> Future for EveryRequestFuture<P, D>
where
    Routes<P, D>: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let response = match state.as_mut().project() {
                StateProjection::Running { future, coding } => {
                    let coding = *coding;
                    match std::task::ready!(future.poll(cx)) {
                        Ok(Ok(response)) => request_encoding::explain_too_large(coding, response),
                        Err(panic) => panic_response(panic),
                    }
                }
                StateProjection::MakingJson { future } => {
                    return future.as_mut().poll(cx).map(Ok);
                }
                StateProjection::Answered { response } => match response.take() {
                    Some(response) => response,
                    // polled again after it answered: a bug of the caller's
                    None => panic_response(Box::new("polled after completion")),
                },
            };
            if !json_errors::needs_json(&response) {
                return Poll::Ready(Ok(response));
            }
            state.set(State::MakingJson {
                future: Box::pin(json_errors::as_json(response)),
            });
        }
    }
}

/// A panic is a bug: log it, answer a generic JSON 500, keep serving.
pub(super) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(%detail, "handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}
