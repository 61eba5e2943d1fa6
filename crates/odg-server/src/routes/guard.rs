//! Around every API route: HTTP metrics by route, admission control, and for the routes that
//! read or change data a session when the login requires one for reads (the original's rule;
//! state-changing routes check their grant in the handler as well).
//!
//! A hand-written service rather than axum's `from_fn`, which boxes a future and the service
//! behind it on every request: when a slot is free (the common case) the route's own future is
//! polled in place; only a request that has to queue for admission gets a boxed future.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceExt as _};

use crate::admission::Entered;
use crate::metrics::{InFlight, RouteMetricsCell};
use crate::AppState;

/// Which checks a group of routes takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Checks {
    /// Metrics, admission, and a session when reads require one.
    Read,
    /// Metrics and admission: what the dashboard reads before anyone logged in.
    Public,
}

#[derive(Clone)]
pub(super) struct GuardLayer {
    state: AppState,
    checks: Checks,
}

impl GuardLayer {
    pub(super) fn new(state: AppState, checks: Checks) -> Self {
        GuardLayer { state, checks }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    /// Called once per route (and method): each guard keeps its route's metric handles.
    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            state: self.state.clone(),
            checks: self.checks,
            metrics: RouteMetricsCell::default(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Guard<S> {
    inner: S,
    state: AppState,
    checks: Checks,
    metrics: RouteMetricsCell,
}

impl<S> Guard<S> {
    /// The answer refusing `request`, if its checks refuse it.
    fn refusal(&self, request: &Request) -> Option<Response> {
        if self.checks == Checks::Public {
            return None;
        }
        self.state
            .auth
            .authorize_read(
                request.headers(),
                request.method().as_str(),
                request.uri().path(),
            )
            .err()
            .map(IntoResponse::into_response)
    }
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let in_flight = InFlight::start_cached(&self.metrics, &request);
        let Some(entered) = self.state.admission.try_enter() else {
            // No free slot: wait in the admission queue, or be shed.
            let guard = self.clone();
            return GuardFuture::Queued {
                future: Box::pin(guard.queued(request)),
                in_flight: Some(in_flight),
            };
        };
        match self.refusal(&request) {
            None => GuardFuture::Admitted {
                future: self.inner.call(request),
                entered: Some(entered),
                in_flight: Some(in_flight),
            },
            Some(refused) => {
                entered.leave();
                GuardFuture::Refused {
                    response: Some(refused),
                    in_flight: Some(in_flight),
                }
            }
        }
    }
}

impl<S> Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    async fn queued(self, request: Request) -> Response {
        match self.state.admission.enter().await {
            Err(shed) => shed,
            Ok(entered) => {
                let response = match self.refusal(&request) {
                    None => match self.inner.oneshot(request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    },
                    Some(refused) => refused,
                };
                entered.leave();
                response
            }
        }
    }
}

pin_project! {
    #[project = GuardProjection]
    pub(super) enum GuardFuture<F> {
        Admitted {
            #[pin]
            future: F,
            entered: Option<Entered>,
            in_flight: Option<InFlight>,
        },
        Queued {
            future: BoxFuture<'static, Response>,
            in_flight: Option<InFlight>,
        },
        /// Admitted, then refused by its checks.
        Refused {
            response: Option<Response>,
            in_flight: Option<InFlight>,
        },
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (response, in_flight) = match self.project() {
            GuardProjection::Admitted {
                future,
                entered,
                in_flight,
            } => {
                let Ok(response) = std::task::ready!(future.poll(cx));
                if let Some(entered) = entered.take() {
                    entered.leave();
                }
                (response, in_flight)
            }
            GuardProjection::Queued { future, in_flight } => {
                (std::task::ready!(future.as_mut().poll(cx)), in_flight)
            }
            GuardProjection::Refused {
                response,
                in_flight,
            } => match response.take() {
                Some(response) => (response, in_flight),
                // polled again after it answered: a bug of the caller's
                None => return Poll::Pending,
            },
        };
        if let Some(mut in_flight) = in_flight.take() {
            in_flight.answered(&response);
        }
        Poll::Ready(Ok(response))
    }
}
