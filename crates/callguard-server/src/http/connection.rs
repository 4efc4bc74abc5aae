//! What one connection may hold and for how long: a request in flight keeps it open, and so does
//! a response still being sent (a live stream); a connection with neither for the idle timeout is
//! closed, and a request body that has not fully arrived within the body timeout fails its
//! request and closes the connection (slow bodies are a classic way to hold sockets open).

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Timeouts and the connection cap of the HTTPS listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// A connection with no request in flight and no response being sent is closed after this
    /// (an HTTP/1 connection sooner: it waits at most 10 s for its next request's headers).
    pub idle_timeout: Duration,
    /// A request body must have arrived whole within this after its headers.
    pub body_timeout: Duration,
    /// HTTP/2: how often an otherwise quiet connection is pinged, and how long an answer may
    /// take before the connection is closed.
    pub keep_alive: Duration,
    /// Connections open at once; further ones are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// What is going on in one connection.
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    last_done: Mutex<Instant>,
    body_timed_out: AtomicBool,
    changed: tokio::sync::Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            last_done: Mutex::new(Instant::now()),
            body_timed_out: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
        })
    }

    /// Counts a request until the guard (moved into its response body) is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    fn last_done(&self) -> Instant {
        self.last_done
            .lock()
            .map_or_else(|e| *e.into_inner(), |t| *t)
    }

    /// Resolves when the connection has been idle (nothing in flight) for `idle`, or a request
    /// body did not arrive in time. Answers which.
    pub(crate) async fn expired(&self, idle: Duration) -> Expiry {
        loop {
            let notified = self.changed.notified();
            if self.body_timed_out.load(Ordering::Acquire) {
                return Expiry::SlowBody;
            }
            if self.in_flight.load(Ordering::Acquire) == 0 {
                let deadline = self.last_done() + idle;
                if Instant::now() >= deadline {
                    return Expiry::Idle;
                }
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
            } else {
                notified.await;
            }
        }
    }
}

/// Why a connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Idle,
    SlowBody,
}

/// One request in flight; dropped when its response has been sent (or abandoned).
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.last_done.lock() {
            *t = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request counted as in flight until it is sent.
pub(crate) struct Counted<B> {
    pub(crate) inner: B,
    pub(crate) _guard: InFlight,
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body that fails with [`BodyTimedOut`] when it is not whole by its deadline.
pub(crate) struct Deadline<B> {
    inner: B,
    sleep: Pin<Box<Sleep>>,
    activity: Arc<Activity>,
    finished: bool,
}

impl<B> Deadline<B> {
    pub(crate) fn new(inner: B, within: Duration, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            sleep: Box::pin(tokio::time::sleep(within)),
            activity,
            finished: false,
        }
    }
}

impl<B> Body for Deadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() {
                this.finished = true;
            }
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if !this.finished && this.sleep.as_mut().poll(cx).is_ready() {
            this.finished = true;
            this.activity.body_timed_out.store(true, Ordering::Release);
            this.activity.changed.notify_one();
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error (a body extractor's rejection) was caused by a body that came too slowly.
#[must_use]
pub fn caused_by_slow_body(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<BodyTimedOut>() {
            return true;
        }
        cause = c.source();
    }
    false
}
