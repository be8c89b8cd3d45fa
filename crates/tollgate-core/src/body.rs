//! Reading a body into one [`Bytes`] with a byte limit, and the body types layers hand on.
//!
//! Layers that sign or verify must see the exact bytes, so they buffer the body once with
//! [`buffer`] (or [`buffer_request`], which also honours `Content-Length` before reading),
//! then give the inner service a [`BufferedBody`] over the *same* `Bytes`: nothing is copied a
//! second time. Responses a layer makes itself (rejections) travel in a
//! [`ResponseBody`](crate::ResponseBody).
//!
//! A server layer also bounds the *time* the whole body may take
//! ([`BufferBody::timeout`], [`DEFAULT_BODY_TIMEOUT`]): a client that trickles its body, or
//! declares a length and stops sending, is answered 408 `body_timeout` once the timeout has
//! passed since reading began, however often single bytes arrive.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::rejection::{Rejection, code};

/// A boxed error, as used across tower.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body limit layers use unless configured otherwise: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a server layer waits for the **whole** request body unless configured otherwise:
/// 10 seconds, counted from the first read, not reset by each chunk that arrives.
///
/// Why 10 s: the bodies tollgate verifies are webhook and API payloads of at most the body
/// limit (1 MiB by default), which a sender writes at once; 10 s for 1 MiB is 100 KiB/s,
/// far below any real link. Webhook senders give up on their side after 10 to 30 s (and
/// retry), so a receiver that waits longer only holds a connection nobody waits for. It is
/// shorter than hyper's default header read timeout (30 s) because it bounds a different
/// thing: tower-http's `RequestBodyTimeout` (no default) and nginx's
/// `client_body_timeout` (60 s) time each read, so a peer sending one byte per interval
/// keeps them waiting forever; this one times the whole body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a body could not be buffered.
#[derive(Debug)]
#[non_exhaustive]
pub enum BufferError {
    /// The body (or its declared `Content-Length`) is longer than the limit: answer 413.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Reading the body failed (the peer went away, a protocol error): answer 400.
    Read(BoxError),
    /// The whole body did not arrive within the timeout ([`BufferBody::timeout`]): answer
    /// 408.
    TimedOut {
        /// The timeout.
        timeout: Duration,
    },
}

impl BufferError {
    /// The rejection a server answers with: 413 `payload_too_large`, 400 `body_read_failed`
    /// or 408 `body_timeout`. The read error's text is not included (it can carry peer
    /// details); log it instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use tollgate_core::BufferError;
    ///
    /// let rejection = BufferError::TimedOut { timeout: Duration::from_secs(10) }.to_rejection();
    /// assert_eq!(rejection.status(), StatusCode::REQUEST_TIMEOUT);
    /// assert_eq!(rejection.code(), "body_timeout");
    /// assert_eq!(rejection.message(), "request body did not arrive in time: 10000 ms");
    /// ```
    pub fn to_rejection(&self) -> Rejection {
        match self {
            Self::TooLarge { limit } => Rejection::from_code(code::PAYLOAD_TOO_LARGE)
                .with_detail(format_args!("{limit} bytes")),
            Self::Read(_) => Rejection::from_code(code::BODY_READ_FAILED),
            Self::TimedOut { timeout } => Rejection::from_code(code::BODY_TIMEOUT)
                .with_detail(format_args!("{} ms", timeout.as_millis())),
        }
    }

    /// Whether this is [`BufferError::TooLarge`].
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge { .. })
    }

    /// Whether this is [`BufferError::TimedOut`].
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Self::TimedOut { .. })
    }
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { limit } => write!(f, "body is larger than the limit of {limit} bytes"),
            Self::Read(err) => write!(f, "body could not be read: {err}"),
            Self::TimedOut { timeout } => {
                write!(f, "body did not arrive within {} ms", timeout.as_millis())
            }
        }
    }
}

impl std::error::Error for BufferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::TooLarge { .. } | Self::TimedOut { .. } => None,
            Self::Read(err) => Some(&**err),
        }
    }
}

/// Fails with [`BufferError::TooLarge`] when the headers declare a `Content-Length` above
/// `limit`, so a server can answer 413 before reading a byte. A missing or unparsable
/// `Content-Length` passes (the byte count while reading still applies).
///
/// ```
/// use http::HeaderMap;
/// use tollgate_core::body::check_content_length;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("content-length", "2048".parse().unwrap());
/// assert!(check_content_length(&headers, 1024).unwrap_err().is_too_large());
/// assert!(check_content_length(&headers, 2048).is_ok());
/// ```
pub fn check_content_length(headers: &HeaderMap, limit: usize) -> Result<(), BufferError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| declared_length(value.as_bytes()));
    match declared {
        Some(length) if length > limit as u64 => Err(BufferError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// The length a `Content-Length` value declares, read as `str::to_str`, `trim` and
/// `u64::from_str` read it (visible ASCII, spaces and tabs only; whitespace around; an
/// optional `+`; decimal digits that fit a `u64`), in one pass over the bytes.
fn declared_length(value: &[u8]) -> Option<u64> {
    // What `HeaderValue::to_str` accepts: then the only whitespace `trim` can meet is ASCII.
    if !value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return None;
    }
    let value = value.trim_ascii();
    let digits = value.strip_prefix(b"+").unwrap_or(value);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |length, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        length.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Reads the whole `body` into one [`Bytes`], failing once more than `limit` bytes arrive.
///
/// A body whose [`size_hint`](Body::size_hint) already says it is longer than `limit` is
/// refused before any read. When the body arrives as one chunk, that chunk's `Bytes` is
/// returned as is (no copy); several chunks are gathered into one buffer. Trailers are
/// ignored.
///
/// **Memory follows the bytes that arrived, never the declared length.** The buffer starts
/// at the size of the first two chunks and doubles when full, so while the body is read it
/// holds at most twice the bytes received and never more than `limit`, whatever the
/// `Content-Length` (or size hint) promised. A peer that declares 1 MiB, sends two bytes and
/// stalls costs two bytes of buffer, not a megabyte (see the crate's "Security
/// considerations").
///
/// No time limit applies: a server layer adds one with [`BufferBody::timeout`].
///
/// The returned [`BufferBody`] is a named future, so a layer can keep it in its own
/// response future without boxing.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tollgate_core::body::buffer;
///
/// # tokio_test_block_on(async {
/// let bytes = buffer(Full::new(Bytes::from_static(b"{\"a\":1}")), 1024).await.unwrap();
/// assert_eq!(bytes, &b"{\"a\":1}"[..]);
///
/// let err = buffer(Full::new(Bytes::from(vec![0; 2048])), 1024).await.unwrap_err();
/// assert!(err.is_too_large());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub fn buffer<B>(body: B, limit: usize) -> BufferBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    BufferBody::new(body, limit)
}

pin_project! {
    /// The future of [`buffer`]: resolves to every byte of the body as one [`Bytes`], or to a
    /// [`BufferError`].
    ///
    /// Do not poll it again once it resolved.
    #[must_use = "futures do nothing unless polled"]
    pub struct BufferBody<B> {
        #[pin]
        body: B,
        limit: usize,
        hint_checked: bool,
        // The first chunk, kept as is: a body that arrives in one chunk is never copied.
        first: Option<Bytes>,
        // Every chunk gathered into one allocation, once a second one arrived. It grows with
        // the bytes that arrived (see `grow`), never with a declared length.
        gathered: Option<Vec<u8>>,
        total: usize,
        // How long the whole body may take (`None`: no limit).
        timeout: Option<Duration>,
        // Started the first time the body is not complete at once (boxed: a body that is
        // already complete, the common case of an in-memory body, costs no timer and no
        // allocation, and the future stays small).
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<B> BufferBody<B> {
    /// A future reading `body` with a limit of `limit` bytes (see [`buffer`]), with no time
    /// limit.
    pub fn new(body: B, limit: usize) -> Self {
        Self {
            body,
            limit,
            hint_checked: false,
            first: None,
            gathered: None,
            total: 0,
            timeout: None,
            deadline: None,
        }
    }

    /// Fails with [`BufferError::TimedOut`] when the **whole** body has not arrived within
    /// `timeout`, counted from the first time reading has to wait. The deadline is set once:
    /// chunks that keep
    /// arriving do not move it, so a peer that trickles a byte at a time is cut off at
    /// `timeout` exactly as one that sends nothing.
    ///
    /// The timer is started only when the body is not already complete at the first poll (an
    /// in-memory body costs no timer). It is tokio's, so a body that has to be waited for
    /// must be polled inside a tokio runtime with the time driver enabled (`#[tokio::main]`,
    /// `Runtime::new`, or `Builder::enable_time`/`enable_all`), as for tower-http's timeouts
    /// and hyper's `TokioTimer`. Outside any tokio runtime no timer can be started and the
    /// timeout does not apply. In a runtime built without its time driver tokio panics when
    /// asked for a timer and cannot be asked first: the panic is caught (your panic hook sees
    /// it, once per thread), a warning is logged, and bodies on that thread are read without a
    /// deadline rather than taking the connection down. With `panic = "abort"` the catch
    /// cannot help: enable the time driver.
    ///
    /// `Duration::ZERO` waits for nothing: a body that is not complete at the first poll
    /// fails at once. A timeout too long to represent is no limit.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::pin::Pin;
    /// use std::task::{Context, Poll};
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http_body::{Body, Frame};
    /// use http_body_util::Full;
    /// use tollgate_core::body::BufferBody;
    ///
    /// /// A peer that declared a body and stopped sending.
    /// struct Stalled;
    /// impl Body for Stalled {
    ///     type Data = Bytes;
    ///     type Error = Infallible;
    ///     fn poll_frame(
    ///         self: Pin<&mut Self>,
    ///         _cx: &mut Context<'_>,
    ///     ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    ///         Poll::Pending
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// // A complete body: read at once, no timer.
    /// let full = Full::new(Bytes::from_static(b"{}"));
    /// let bytes = BufferBody::new(full, 1024).timeout(Duration::from_millis(50)).await.unwrap();
    /// assert_eq!(bytes, &b"{}"[..]);
    ///
    /// // A body that never ends: refused once the timeout has passed.
    /// let err = BufferBody::new(Stalled, 1024).timeout(Duration::from_millis(50)).await.unwrap_err();
    /// assert!(err.is_timed_out());
    /// # });
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<B> fmt::Debug for BufferBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferBody")
            .field("limit", &self.limit)
            .field("timeout", &self.timeout)
            .field("read", &self.total)
            .finish_non_exhaustive()
    }
}

impl<B> std::future::Future for BufferBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Bytes, BufferError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let limit = *this.limit;
        if !*this.hint_checked {
            *this.hint_checked = true;
            if this.body.size_hint().lower() > limit as u64 {
                return Poll::Ready(Err(BufferError::TooLarge { limit }));
            }
        }
        loop {
            // The deadline also binds a body that keeps answering at once (empty frames,
            // trailers), and is checked before the timer's own poll, which tokio's task budget
            // may hold back.
            if this
                .deadline
                .as_ref()
                .is_some_and(|sleep| sleep.is_elapsed())
                && let Some(timeout) = *this.timeout
            {
                return Poll::Ready(Err(BufferError::TimedOut { timeout }));
            }
            let frame = match this.body.as_mut().poll_frame(cx) {
                Poll::Pending => return wait(this.timeout, this.deadline, cx),
                Poll::Ready(None) => {
                    return Poll::Ready(Ok(match (this.first.take(), this.gathered.take()) {
                        (_, Some(buf)) => Bytes::from(buf),
                        (Some(first), None) => first,
                        (None, None) => Bytes::new(),
                    }));
                }
                Poll::Ready(Some(Err(err))) => {
                    return Poll::Ready(Err(BufferError::Read(err.into())));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Ok(mut data) = frame.into_data() else {
                continue; // trailers
            };
            let len = data.remaining();
            if len == 0 {
                continue;
            }
            *this.total = this.total.saturating_add(len);
            if *this.total > limit {
                return Poll::Ready(Err(BufferError::TooLarge { limit }));
            }
            match (&mut *this.first, &mut *this.gathered) {
                (None, None) => *this.first = Some(data.copy_to_bytes(len)),
                (Some(_), None) => {
                    // Exactly what arrived so far: the size hint (a declared `Content-Length`)
                    // is a promise, and memory is spent on bytes, not on promises.
                    let mut buf = Vec::with_capacity(*this.total);
                    if let Some(first) = this.first.take() {
                        buf.extend_from_slice(&first);
                    }
                    put_chunks(&mut buf, data, limit);
                    *this.gathered = Some(buf);
                }
                (_, Some(buf)) => put_chunks(buf, data, limit),
            }
        }
    }
}

thread_local! {
    /// This thread's runtime was found to have no time driver: no timer is asked for again.
    static NO_TIMER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The body is not complete: starts the deadline the first time (none without a timeout, or
/// outside a tokio runtime, or in one built without its time driver, where no timer can be
/// started), and fails once it passed. The deadline is set once, so chunks that keep arriving
/// never move it.
fn wait(
    timeout_slot: &mut Option<Duration>,
    deadline: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Bytes, BufferError>> {
    let Some(timeout) = *timeout_slot else {
        return Poll::Pending;
    };
    let sleep = match deadline {
        Some(sleep) => sleep,
        None => {
            if timeout.is_zero() {
                return Poll::Ready(Err(BufferError::TimedOut { timeout }));
            }
            if tokio::runtime::Handle::try_current().is_err() || NO_TIMER.get() {
                return Poll::Pending;
            }
            // A runtime built without `enable_time` panics when asked for a timer, and tokio
            // cannot be asked first: a client's slow body must not take the connection task
            // down, so the panic is caught, remembered for this thread (a worker thread serves
            // one runtime) and this body waits without a deadline (logged).
            let started = std::panic::catch_unwind(|| tokio::time::sleep(timeout));
            match started {
                Ok(sleep) => deadline.insert(Box::pin(sleep)),
                Err(_) => {
                    NO_TIMER.set(true);
                    *timeout_slot = None;
                    tracing::warn!(
                        target: "tollgate",
                        "body timeout not enforced: the tokio runtime has no time driver \
                         (build it with enable_time or enable_all)"
                    );
                    return Poll::Pending;
                }
            }
        }
    };
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(BufferError::TimedOut { timeout })),
        Poll::Pending => Poll::Pending,
    }
}

/// Appends a `Buf` chunk by chunk, with no intermediate `Bytes`, growing `buf` with [`grow`].
fn put_chunks(buf: &mut Vec<u8>, mut data: impl Buf, limit: usize) {
    grow(buf, data.remaining(), limit);
    while data.has_remaining() {
        let chunk = data.chunk();
        let len = chunk.len();
        buf.extend_from_slice(chunk);
        data.advance(len);
    }
}

/// Makes room for `additional` more bytes: when `buf` is full, its capacity doubles (amortised
/// O(1) per byte), but never past `limit` unless the bytes themselves need it (they never do:
/// the caller refuses a body once more than `limit` bytes arrived). So the capacity is at most
/// twice the bytes received and at most `limit`.
fn grow(buf: &mut Vec<u8>, additional: usize, limit: usize) {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return;
    }
    let target = buf.capacity().saturating_mul(2).min(limit).max(needed);
    buf.reserve_exact(target - buf.len());
}

/// Splits `request`, checks its `Content-Length` against `limit`
/// ([`check_content_length`]), then buffers its body ([`buffer`]).
///
/// Put the bytes back with `Request::from_parts(parts, BufferedBody::new(bytes.clone()))`:
/// the clone shares the same memory.
///
/// No time limit applies; a server that reads a peer's body uses
/// [`buffer_request_within`] (or [`BufferBody::timeout`]).
pub async fn buffer_request<B>(
    request: http::Request<B>,
    limit: usize,
) -> Result<(http::request::Parts, Bytes), BufferError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    check_content_length(&parts.headers, limit)?;
    let bytes = buffer(body, limit).await?;
    Ok((parts, bytes))
}

/// [`buffer_request`] with a time limit: fails with [`BufferError::TimedOut`] when the whole
/// body has not arrived within `timeout` (see [`BufferBody::timeout`]). A declared
/// `Content-Length` over `limit` still fails at once, without waiting for the body.
pub async fn buffer_request_within<B>(
    request: http::Request<B>,
    limit: usize,
    timeout: Duration,
) -> Result<(http::request::Parts, Bytes), BufferError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    check_content_length(&parts.headers, limit)?;
    let bytes = buffer(body, limit).timeout(timeout).await?;
    Ok((parts, bytes))
}

/// A body of bytes that were already read: yields them in one frame.
///
/// `size_hint` is exact and `is_end_stream` is true once the bytes are taken, so hyper sends a
/// `Content-Length`. It is `Send`, `Sync` and `Default` (empty).
///
/// ```
/// use bytes::Bytes;
/// use http_body::Body;
/// use tollgate_core::body::BufferedBody;
///
/// let body = BufferedBody::new(Bytes::from_static(b"hello"));
/// assert_eq!(body.size_hint().exact(), Some(5));
/// assert_eq!(body.bytes(), Some(&Bytes::from_static(b"hello")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct BufferedBody {
    bytes: Option<Bytes>,
}

impl BufferedBody {
    /// A body that yields `bytes`.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            bytes: (!bytes.is_empty()).then_some(bytes),
        }
    }

    /// The bytes not yet polled out of the body.
    pub fn bytes(&self) -> Option<&Bytes> {
        self.bytes.as_ref()
    }

    /// The remaining bytes, empty once polled.
    pub fn into_bytes(self) -> Bytes {
        self.bytes.unwrap_or_default()
    }
}

impl From<Bytes> for BufferedBody {
    fn from(bytes: Bytes) -> Self {
        Self::new(bytes)
    }
}

impl Body for BufferedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(self.get_mut().bytes.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http::HeaderValue;
    use http_body_util::{BodyExt, Full};

    use super::*;

    /// The one-pass reading of a declared `Content-Length` agrees with the definition it
    /// replaced (`to_str`, `trim`, `parse::<u64>`) on every value a header can hold that is
    /// near a number: signs, whitespace of every kind, leading zeros, overflow, other bytes.
    #[test]
    fn declared_length_reads_as_to_str_trim_parse() {
        let definition = |value: &HeaderValue| {
            value
                .to_str()
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
        };
        let mut values: Vec<Vec<u8>> = [
            "",
            "0",
            "1024",
            "+1024",
            "-1",
            "++1",
            "+",
            " ",
            " 12 ",
            "\t12\t",
            "1 2",
            "12a",
            "0x10",
            "00012",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "1_000",
            "1.0",
            "1e3",
            "１２",
        ]
        .iter()
        .map(|text| text.as_bytes().to_vec())
        .collect();
        for byte in 0u8..=255 {
            for at in [0, 1, 3] {
                let mut value = b"123".to_vec();
                value.insert(at, byte);
                values.push(value);
            }
        }
        for value in values {
            let Ok(header) = HeaderValue::from_bytes(&value) else {
                continue;
            };
            assert_eq!(
                declared_length(header.as_bytes()),
                definition(&header),
                "{value:?}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from_static(" +2049 "),
        );
        assert!(
            check_content_length(&headers, 2048)
                .unwrap_err()
                .is_too_large()
        );
        headers.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from_static("2048"),
        );
        assert!(check_content_length(&headers, 2048).is_ok());
    }

    /// A body that yields the given chunks, then optionally an error, with no size hint.
    struct Chunks {
        chunks: VecDeque<Bytes>,
        fail_at_end: bool,
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if let Some(chunk) = self.chunks.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if self.fail_at_end {
                self.fail_at_end = false;
                return Poll::Ready(Some(Err(std::io::Error::other("connection reset"))));
            }
            Poll::Ready(None)
        }
    }

    fn chunks(parts: &[&'static [u8]]) -> Chunks {
        Chunks {
            chunks: parts.iter().map(|p| Bytes::from_static(p)).collect(),
            fail_at_end: false,
        }
    }

    #[tokio::test]
    async fn single_chunk_is_returned_without_copy() {
        let original = Bytes::from(vec![7u8; 1000]);
        let ptr = original.as_ptr();
        let out = buffer(Full::new(original), 1000).await.unwrap();
        assert_eq!(out.as_ptr(), ptr);
        assert_eq!(out.len(), 1000);
    }

    #[tokio::test]
    async fn at_under_and_over_the_limit_with_size_hint() {
        for (len, ok) in [(0, true), (99, true), (100, true), (101, false)] {
            let res = buffer(Full::new(Bytes::from(vec![1u8; len])), 100).await;
            assert_eq!(res.is_ok(), ok, "len {len}");
            if let Ok(bytes) = res {
                assert_eq!(bytes.len(), len);
            } else {
                assert!(matches!(res, Err(BufferError::TooLarge { limit: 100 })));
            }
        }
    }

    #[tokio::test]
    async fn chunked_without_length_is_counted_while_reading() {
        let body = chunks(&[b"hello ", b"", b"chunked ", b"world"]);
        assert_eq!(body.size_hint().upper(), None);
        let out = buffer(body, 19).await.unwrap();
        assert_eq!(out, &b"hello chunked world"[..]);

        let over = buffer(chunks(&[b"hello ", b"chunked ", b"world!"]), 19).await;
        assert!(matches!(over, Err(BufferError::TooLarge { limit: 19 })));
    }

    #[tokio::test]
    async fn trailers_are_skipped() {
        struct WithTrailers(u8);
        impl Body for WithTrailers {
            type Data = Bytes;
            type Error = Infallible;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
                self.0 += 1;
                Poll::Ready(match self.0 {
                    1 => Some(Ok(Frame::data(Bytes::from_static(b"ab")))),
                    2 => Some(Ok(Frame::trailers(HeaderMap::new()))),
                    _ => None,
                })
            }
        }
        assert_eq!(buffer(WithTrailers(0), 2).await.unwrap(), &b"ab"[..]);
    }

    #[tokio::test]
    async fn read_errors_are_distinguished_from_size() {
        let mut body = chunks(&[b"part"]);
        body.fail_at_end = true;
        let err = buffer(body, 100).await.unwrap_err();
        assert!(matches!(err, BufferError::Read(_)));
        assert!(!err.is_too_large());
        let rejection = err.to_rejection();
        assert_eq!(rejection.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(rejection.code(), "body_read_failed");
        assert!(!rejection.message().contains("reset"));

        let too_large = BufferError::TooLarge { limit: 5 }.to_rejection();
        assert_eq!(too_large.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(too_large.code(), "payload_too_large");
    }

    #[tokio::test]
    async fn content_length_is_checked_before_reading() {
        // The body is short, but the declared length is over the limit: refused unread.
        let request = http::Request::builder()
            .header("content-length", "101")
            .body(chunks(&[b"short"]))
            .unwrap();
        let err = buffer_request(request, 100).await.unwrap_err();
        assert!(err.is_too_large());

        let request = http::Request::builder()
            .header("content-length", "5")
            .body(chunks(&[b"short"]))
            .unwrap();
        let (parts, bytes) = buffer_request(request, 100).await.unwrap();
        assert_eq!(bytes, &b"short"[..]);
        assert_eq!(parts.headers["content-length"], "5");

        // Lying small Content-Length does not let a long body through: bytes are counted.
        let request = http::Request::builder()
            .header("content-length", "3")
            .body(chunks(&[b"0123456789", b"0123456789"]))
            .unwrap();
        assert!(
            buffer_request(request, 15)
                .await
                .unwrap_err()
                .is_too_large()
        );
    }

    /// A body that declares `declared` bytes (as hyper's body does from `Content-Length`),
    /// yields `chunks`, then stalls.
    struct Stalling {
        declared: u64,
        chunks: VecDeque<Bytes>,
        /// Ends the body once `chunks` is empty, instead of stalling.
        finished: bool,
    }

    impl Body for Stalling {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.chunks.pop_front() {
                Some(chunk) => {
                    self.declared = self.declared.saturating_sub(chunk.len() as u64);
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                None if self.finished => Poll::Ready(None),
                None => Poll::Pending,
            }
        }
        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.declared)
        }
    }

    /// Security considerations: memory grows with the bytes that arrived, never with the
    /// declared length. A body that declares 1 MiB, sends 2 bytes and stalls holds a buffer
    /// of a few bytes.
    #[test]
    fn declared_length_reserves_nothing() {
        let body = Stalling {
            declared: DEFAULT_BODY_LIMIT as u64,
            chunks: [b"a", b"b"]
                .into_iter()
                .map(|b| Bytes::from_static(b))
                .collect(),
            finished: false,
        };
        let mut future = buffer(body, DEFAULT_BODY_LIMIT);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
        assert_eq!(future.total, 2);
        let capacity = future.gathered.as_ref().map_or(0, |buf| buf.capacity());
        assert!(capacity <= 64, "2 bytes arrived, {capacity} bytes reserved");
    }

    /// Security considerations: while a body is read, the buffer holds at most twice the
    /// bytes that arrived and never more than the limit, whatever was declared; growth is
    /// amortised (few reallocations for many small chunks).
    #[test]
    fn capacity_stays_within_twice_the_bytes_received_and_the_limit() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for (limit, chunk_len, chunks) in [(1000, 1, 1000), (1000, 7, 142), (4096, 100, 40)] {
            let body = Stalling {
                declared: limit as u64,
                chunks: VecDeque::new(),
                finished: false,
            };
            let mut future = buffer(body, limit);
            let mut reallocations = 0;
            let mut last_capacity = 0;
            for sent in 1..=chunks {
                future
                    .body
                    .chunks
                    .push_back(Bytes::from(vec![b'x'; chunk_len]));
                assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
                let received = sent * chunk_len;
                assert_eq!(future.total, received);
                let capacity = future.gathered.as_ref().map_or(0, |buf| buf.capacity());
                assert!(
                    capacity <= 2 * received,
                    "{received} received, {capacity} reserved"
                );
                assert!(
                    capacity <= limit,
                    "{capacity} reserved over the limit {limit}"
                );
                if capacity != last_capacity {
                    reallocations += 1;
                    last_capacity = capacity;
                }
            }
            assert!(reallocations <= 12, "{reallocations} reallocations");
            // The rest of the declared bytes arrive: the result is every byte, in order.
            let rest = limit - chunks * chunk_len;
            future.body.chunks.push_back(Bytes::from(vec![b'y'; rest]));
            future.body.finished = true;
            let Poll::Ready(Ok(bytes)) = Pin::new(&mut future).poll(&mut cx) else {
                panic!("the body did not complete");
            };
            assert_eq!(bytes.len(), limit);
            assert!(bytes[..chunks * chunk_len].iter().all(|&b| b == b'x'));
            assert!(bytes[chunks * chunk_len..].iter().all(|&b| b == b'y'));
        }
    }

    /// A peer that sends one byte every `every`, forever: each chunk arrives well within
    /// any per-chunk timeout.
    struct Trickle {
        interval: tokio::time::Interval,
        sent: usize,
    }

    impl Trickle {
        fn every(every: std::time::Duration) -> Self {
            Self {
                interval: tokio::time::interval(every),
                sent: 0,
            }
        }
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            std::task::ready!(self.interval.poll_tick(cx));
            self.sent += 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    /// Security considerations: the timeout counts the whole body from the first read; a
    /// byte every 5 ms does not move it, and the answer is 408 `body_timeout`.
    #[tokio::test]
    async fn a_trickle_is_cut_off_at_the_whole_body_timeout() {
        let timeout = Duration::from_millis(120);
        let started = std::time::Instant::now();
        let mut future = std::pin::pin!(
            buffer(Trickle::every(Duration::from_millis(5)), 1 << 20).timeout(timeout)
        );
        let err = std::future::poll_fn(|cx| future.as_mut().poll(cx))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, BufferError::TimedOut { timeout: t } if t == timeout));
        assert!(err.is_timed_out() && !err.is_too_large());
        // tokio's timer works in whole milliseconds: it may fire up to a tick early.
        assert!(
            elapsed + Duration::from_millis(2) >= timeout,
            "cut off after {elapsed:?}"
        );
        assert!(elapsed < timeout * 4, "cut off only after {elapsed:?}");
        // Bytes kept arriving the whole time: a per-chunk timeout would never have fired.
        assert!(future.body.sent >= 5, "{} bytes arrived", future.body.sent);
        let rejection = err.to_rejection();
        assert_eq!(rejection.status(), http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(rejection.code(), "body_timeout");
        assert_eq!(
            rejection.message(),
            "request body did not arrive in time: 120 ms"
        );
        assert_eq!(err.to_string(), "body did not arrive within 120 ms");
    }

    /// A body that declares a length and never sends it is cut off the same way.
    #[tokio::test]
    async fn a_declared_body_that_never_comes_times_out() {
        let timeout = Duration::from_millis(30);
        let stalled = Stalling {
            declared: 100,
            chunks: VecDeque::new(),
            finished: false,
        };
        let started = std::time::Instant::now();
        let request = http::Request::builder()
            .header("content-length", "100")
            .body(stalled)
            .unwrap();
        let err = buffer_request_within(request, 1000, timeout)
            .await
            .unwrap_err();
        assert!(err.is_timed_out());
        assert!(started.elapsed() + Duration::from_millis(2) >= timeout);

        // Over the limit: refused at once, without waiting for the timeout.
        let request = http::Request::builder()
            .header("content-length", "10000000000")
            .body(Stalling {
                declared: 10_000_000_000,
                chunks: VecDeque::new(),
                finished: false,
            })
            .unwrap();
        let started = std::time::Instant::now();
        let err = buffer_request_within(request, 1000, Duration::from_secs(3600))
            .await
            .unwrap_err();
        assert!(err.is_too_large());
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A body complete at the first poll starts no timer (and so needs no runtime); the
    /// timer is started once, when the body first has to be waited for.
    #[test]
    fn a_complete_body_starts_no_timer() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut future = buffer(Full::new(Bytes::from_static(b"ok")), 10).timeout(Duration::ZERO);
        assert!(matches!(
            Pin::new(&mut future).poll(&mut cx),
            Poll::Ready(Ok(ref b)) if b == &b"ok"[..]
        ));
        assert!(future.deadline.is_none());

        // Outside a tokio runtime no timer can start: pending, no panic.
        let mut stalled = buffer(
            Stalling {
                declared: 5,
                chunks: VecDeque::new(),
                finished: false,
            },
            10,
        )
        .timeout(Duration::from_secs(1));
        assert!(Pin::new(&mut stalled).poll(&mut cx).is_pending());
        assert!(stalled.deadline.is_none());

        // Inside one, the first wait starts the timer.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        assert!(Pin::new(&mut stalled).poll(&mut cx).is_pending());
        assert!(stalled.deadline.is_some());
    }

    /// `Duration::ZERO` waits for nothing: a body not complete at the first poll fails at
    /// once, without a timer.
    #[test]
    fn a_zero_timeout_fails_a_body_that_must_be_waited_for() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut future = buffer(
            Stalling {
                declared: 5,
                chunks: [Bytes::from_static(b"ab")].into_iter().collect(),
                finished: false,
            },
            10,
        )
        .timeout(Duration::ZERO);
        assert!(matches!(
            Pin::new(&mut future).poll(&mut cx),
            Poll::Ready(Err(BufferError::TimedOut {
                timeout: Duration::ZERO
            }))
        ));
        assert!(future.deadline.is_none());
    }

    #[tokio::test]
    async fn buffered_body_yields_same_bytes_once() {
        let bytes = Bytes::from(vec![3u8; 64]);
        let ptr = bytes.as_ptr();
        let body = BufferedBody::new(bytes.clone());
        assert_eq!(body.size_hint().exact(), Some(64));
        assert!(!body.is_end_stream());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.as_ptr(), ptr);

        let empty = BufferedBody::default();
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<BufferedBody>();
    }
}
