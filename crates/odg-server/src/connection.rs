//! One HTTP/1 connection: what it is doing (reading a request head, handling requests, idle
//! between them), the deadline that follows from that, and the socket wrapper that observes it.
//!
//! hyper's own `header_read_timeout` starts its clock whenever a connection goes idle, so it
//! would also cut keep-alive connections after the header timeout; we want a short limit on
//! slow heads and a longer one on idle keep-alive connections (longer than a load balancer's
//! idle timeout, so the balancer closes first and never sends into a closing connection). So the
//! phases are tracked here: bytes read while idle start a head, the service call ends it, the
//! end of the response body starts idleness.
//!
//! The wrapper also gives hyper's automatic error answers (400 malformed request, 414 URI too
//! long, 431 headers too large, written by hyper before any service sees the request) a JSON
//! body like every other answer of the service.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why a connection ended (the `reason` label of the closed-connections counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed it, or keep-alive ended it after a response.
    Finished,
    /// An I/O or protocol error.
    Error,
    /// A request head took longer than the header-read timeout.
    HeaderTimeout,
    /// No new request within the idle timeout after the last response.
    IdleTimeout,
}

impl CloseReason {
    pub(crate) const ALL: [CloseReason; 4] = [
        CloseReason::Finished,
        CloseReason::Error,
        CloseReason::HeaderTimeout,
        CloseReason::IdleTimeout,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Finished => "finished",
            CloseReason::Error => "error",
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head to complete, since the connection was accepted or since the
    /// first byte of a request after an idle period.
    ReadingHead { since: Instant },
    /// Requests handed to the router whose response bodies are not finished.
    Handling { requests: usize },
    /// Between a finished response and the next request's first byte.
    Idle { since: Instant },
}

/// The phase of one connection, shared by its socket wrapper, its service and its task.
///
/// A phase change does not wake the connection task: the task looks at the phase at
/// [`Activity::next_check`], which is never later than the deadline of the phase it saw nor
/// than that of any phase that can follow it, so no change can bring a deadline forward past
/// the check. (Waking it on every change cost three wake-ups and three timer re-registrations,
/// on a lock every worker shares, per request.)
#[derive(Debug)]
pub(crate) struct Activity {
    phase: Mutex<Phase>,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            phase: Mutex::new(Phase::ReadingHead {
                since: Instant::now(),
            }),
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        if let Ok(mut phase) = self.phase.lock() {
            *phase = change(*phase);
        }
    }

    fn bytes_read(&self) {
        let idle = matches!(self.phase.lock().as_deref(), Ok(Phase::Idle { .. }));
        if idle {
            self.update(|phase| match phase {
                Phase::Idle { .. } => Phase::ReadingHead {
                    since: Instant::now(),
                },
                other => other,
            });
        }
    }

    fn request_started(&self) {
        self.update(|phase| match phase {
            Phase::Handling { requests } => Phase::Handling {
                requests: requests + 1,
            },
            _ => Phase::Handling { requests: 1 },
        });
    }

    fn request_finished(&self) {
        self.update(|phase| match phase {
            Phase::Handling { requests } if requests > 1 => Phase::Handling {
                requests: requests - 1,
            },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        });
    }

    fn is_handling(&self) -> bool {
        matches!(self.phase.lock().as_deref(), Ok(Phase::Handling { .. }))
    }

    /// When the connection task should next look at the phase: the phase's own deadline, or
    /// the sooner of the two timeouts from now if that comes first. Any phase that follows
    /// starts no earlier than now, so its deadline is at least that far away.
    pub(crate) fn next_check(
        &self,
        header_read_timeout: Duration,
        idle_timeout: Duration,
    ) -> Instant {
        let any_next_phase = Instant::now() + header_read_timeout.min(idle_timeout);
        match self.deadline(header_read_timeout, idle_timeout) {
            Some((own, _)) => own.min(any_next_phase),
            None => any_next_phase,
        }
    }

    /// When the connection is to be closed unless its phase changes, and why.
    pub(crate) fn deadline(
        &self,
        header_read_timeout: Duration,
        idle_timeout: Duration,
    ) -> Option<(Instant, CloseReason)> {
        match *self.phase.lock().ok()? {
            Phase::ReadingHead { since } => {
                Some((since + header_read_timeout, CloseReason::HeaderTimeout))
            }
            Phase::Idle { since } => Some((since + idle_timeout, CloseReason::IdleTimeout)),
            Phase::Handling { .. } => None,
        }
    }
}

/// Marks one request as handled until dropped, i.e. until hyper has finished (or abandoned)
/// its response body.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    pub(crate) fn start(activity: Arc<Activity>) -> RequestGuard {
        activity.request_started();
        RequestGuard(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request's [`RequestGuard`] alive.
pub(crate) struct GuardedBody {
    pub(crate) body: axum::body::Body,
    pub(crate) _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket as hyper sees it: reads mark activity; hyper's automatic error answers are
/// rewritten with a JSON body.
pub(crate) struct ObservedStream {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// A JSON answer written in place of hyper's bodiless one; once it is out, whatever hyper
    /// writes is reported written and dropped (it only ever finishes its replaced answer).
    replacement: Option<Replacement>,
}

struct Replacement {
    answer: Bytes,
    written: usize,
}

impl ObservedStream {
    pub(crate) fn new(stream: TcpStream, activity: Arc<Activity>) -> ObservedStream {
        ObservedStream {
            stream,
            activity,
            replacement: None,
        }
    }

    /// Writes the rest of the replacement; then reports hyper's `len` bytes written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        let Some(replacement) = self.replacement.as_mut() else {
            return Poll::Ready(Ok(len));
        };
        while replacement.written < replacement.answer.len() {
            let rest = &replacement.answer[replacement.written..];
            let count = std::task::ready!(Pin::new(&mut self.stream).poll_write(cx, rest))?;
            if count == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            replacement.written += count;
        }
        Poll::Ready(Ok(len))
    }
}

impl AsyncRead for ObservedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for ObservedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_some() {
            return self.poll_replacement(cx, buf.len());
        }
        // hyper answers a request it could not parse before any service ran: no request is
        // being handled, and the bytes are exactly its bodiless error head.
        if !self.activity.is_handling() {
            if let Some(answer) = json_answer_for_automatic_error(buf) {
                self.replacement = Some(Replacement { answer, written: 0 });
                return self.poll_replacement(cx, buf.len());
            }
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    /// hyper queues body chunks and writes them with the head in one vectored write (no copy
    /// into a flat buffer, which would cost memory per connection); its automatic error answers
    /// come as a single slice.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|buf| buf.len()).sum();
        if self.replacement.is_some() {
            return self.poll_replacement(cx, total);
        }
        if !self.activity.is_handling() {
            let mut non_empty = bufs.iter().filter(|buf| !buf.is_empty());
            if let (Some(only), None) = (non_empty.next(), non_empty.next()) {
                if let Some(answer) = json_answer_for_automatic_error(only) {
                    self.replacement = Some(Replacement { answer, written: 0 });
                    return self.poll_replacement(cx, total);
                }
            }
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// If `head` is one of hyper's automatic error answers (a status line of 400, 414 or 431 and
/// headers with `content-length: 0`, nothing after them), the same status with a JSON body.
/// Our own answers never match: every 4xx of the service has a JSON body and a content type.
fn json_answer_for_automatic_error(head: &[u8]) -> Option<Bytes> {
    // Cheap rejections first: this runs on every write made while no request is handled.
    if head.len() > 1024 || !head.starts_with(b"HTTP/1.") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let (status_line, rest) = text.split_once("\r\n")?;
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))?;
    let message = match status.get(..3)? {
        "400" => "malformed HTTP request",
        "414" => "request URI too long",
        "431" => "request headers too large",
        _ => return None,
    };
    let headers = rest
        .strip_suffix("\r\n\r\n")
        .or_else(|| rest.strip_suffix("\r\n"))?;
    let mut bodiless = false;
    for header in headers.split("\r\n").filter(|line| !line.is_empty()) {
        let (name, value) = header.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => bodiless = true,
            "content-type" | "transfer-encoding" => return None,
            _ => {}
        }
    }
    if !bodiless {
        return None;
    }
    let body = serde_json::json!({ "error": message }).to_string();
    Some(Bytes::from(format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_parse_error_heads_are_rewritten() {
        let answer = json_answer_for_automatic_error(
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 12:00:00 GMT\r\n\r\n",
        )
        .expect("hyper's 414 is rewritten");
        let text = std::str::from_utf8(&answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(
            text.ends_with(r#"{"error":"request URI too long"}"#),
            "{text}"
        );

        for ours in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n{}",
            b"{\"error\": \"HTTP/1.1 400 \"}",
        ] {
            assert!(json_answer_for_automatic_error(ours).is_none());
        }
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let header = Duration::from_secs(2);
        let idle = Duration::from_secs(60);
        let before = Instant::now();
        let activity = Arc::new(Activity::new());
        let (deadline, reason) = activity.deadline(header, idle).unwrap();
        assert_eq!(reason, CloseReason::HeaderTimeout);
        assert!(deadline >= before + header && deadline <= Instant::now() + header);

        let guard = RequestGuard::start(activity.clone());
        assert!(activity.deadline(header, idle).is_none());
        activity.bytes_read();
        assert!(
            activity.deadline(header, idle).is_none(),
            "a body is no new head"
        );
        let finished = Instant::now();
        drop(guard);
        let (deadline, reason) = activity.deadline(header, idle).unwrap();
        assert_eq!(reason, CloseReason::IdleTimeout);
        assert!(deadline >= finished + idle && deadline <= Instant::now() + idle);

        let first_byte = Instant::now();
        activity.bytes_read();
        let (deadline, reason) = activity.deadline(header, idle).unwrap();
        assert_eq!(reason, CloseReason::HeaderTimeout);
        assert!(deadline >= first_byte + header && deadline <= Instant::now() + header);
    }

    /// The connection task is not woken by phase changes: whatever phase it armed its check in,
    /// every phase that follows must have no deadline before that check, whichever timeout is
    /// the shorter one.
    #[test]
    fn no_phase_change_brings_a_deadline_before_the_next_check() {
        // request started, request finished, first bytes of the next head; three times
        const STEPS: usize = 9;
        fn step(activity: &Arc<Activity>, index: usize, guards: &mut Vec<RequestGuard>) {
            match index % 3 {
                0 => guards.push(RequestGuard::start(activity.clone())),
                1 => drop(guards.pop()),
                _ => activity.bytes_read(),
            }
        }
        for (header, idle) in [
            (Duration::from_secs(2), Duration::from_secs(60)),
            (Duration::from_secs(60), Duration::from_secs(2)),
        ] {
            for armed_after in 0..=STEPS {
                let activity = Arc::new(Activity::new());
                let mut guards = Vec::new();
                for index in 0..armed_after {
                    step(&activity, index, &mut guards);
                }
                let check = activity.next_check(header, idle);
                for index in armed_after..STEPS {
                    step(&activity, index, &mut guards);
                    if let Some((at, reason)) = activity.deadline(header, idle) {
                        assert!(
                            at >= check,
                            "armed after {armed_after} steps, step {index}: {reason:?} at {at:?} before the check at {check:?}"
                        );
                    }
                }
            }
        }
    }
}
