//! [`ProviderClient`]: the whole outbound stack behind one nameable, cloneable service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body::Body;
use tollgate_core::body::{self, BufferError};
use tollgate_core::{BoxError, BufferedBody};
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;
use tower_service::Service;

use crate::CallError;
use crate::attempt::{Attempt, CallDeadline};
use crate::future::ProviderClientFuture;

/// The base URL relative request URIs are joined to.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    /// `host[:port]`, the port only when it is not 443.
    pub(crate) authority: String,
    /// `""` or `/seg[/seg...]`, no trailing `/`.
    pub(crate) path: String,
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.authority, self.path)
    }
}

impl BaseUrl {
    /// `https://authority` + base path + the request's path and query.
    fn join(&self, relative: &Uri) -> Result<Uri, CallError> {
        let path = relative.path_and_query().map_or("/", PathAndQuery::as_str);
        if !path.starts_with('/') {
            return Err(CallError::InvalidUri {
                reason: "a relative URI must start with `/`",
            });
        }
        let joined = format!("{}{path}", self.path);
        Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(self.authority.as_str())
            .path_and_query(joined)
            .build()
            .map_err(|_| CallError::InvalidUri {
                reason: "the joined URI is not valid",
            })
    }
}

pub(crate) struct Shared {
    pub(crate) provider: &'static str,
    pub(crate) base_url: Option<BaseUrl>,
    pub(crate) deadline: Duration,
    pub(crate) max_request_body: usize,
    pub(crate) summary: String,
}

/// A client for one provider: the call stack built by
/// [`ClientBuilder`](crate::ClientBuilder), as a `tower::Service` that takes any request body
/// and fails with [`CallError`].
///
/// It is `Clone`, `Send` and `Sync`; clones share the connection pool, the rate limit and the
/// concurrency limit. `poll_ready` is always ready: the limits are waited for inside the
/// call, under its deadline. The response body is streamed: the deadline and the attempt
/// timeout end when the response head arrives; bound the body read yourself if you need to.
///
/// `ResBody` is the transport's response body: `hyper::body::Incoming` for
/// [`build`](crate::ClientBuilder::build).
pub struct ProviderClient<ResBody = hyper::body::Incoming> {
    shared: Arc<Shared>,
    stack: BoxCloneSyncService<Request<BufferedBody>, Response<ResBody>, BoxError>,
}

impl<ResBody> ProviderClient<ResBody> {
    pub(crate) fn new(
        shared: Shared,
        stack: BoxCloneSyncService<Request<BufferedBody>, Response<ResBody>, BoxError>,
    ) -> Self {
        Self {
            shared: Arc::new(shared),
            stack,
        }
    }

    /// The provider's name, as in audit events.
    pub fn provider(&self) -> &'static str {
        self.shared.provider
    }

    /// The deadline of each call.
    pub fn deadline(&self) -> Duration {
        self.shared.deadline
    }
}

impl<ResBody> Clone for ProviderClient<ResBody> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            stack: self.stack.clone(),
        }
    }
}

impl<ResBody> fmt::Debug for ProviderClient<ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient")
            .field("provider", &self.shared.provider)
            .field(
                "base_url",
                &self.shared.base_url.as_ref().map(ToString::to_string),
            )
            .field("deadline", &self.shared.deadline)
            .field("max_request_body", &self.shared.max_request_body)
            .field("stack", &self.shared.summary)
            .finish()
    }
}

impl<B, ResBody> Service<Request<B>> for ProviderClient<ResBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = CallError;
    type Future = ProviderClientFuture<ResBody>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let stack = self.stack.clone();
        let started = Instant::now();
        let deadline = shared.deadline;
        ProviderClientFuture::new(async move {
            let call = async move {
                let (mut parts, body) = request.into_parts();
                // Where it goes is settled before the body is read or anything is opened.
                parts.uri = target(&shared, parts.uri)?;
                body::check_content_length(&parts.headers, shared.max_request_body)
                    .map_err(buffer_error)?;
                let bytes = body::buffer(body, shared.max_request_body)
                    .await
                    .map_err(buffer_error)?;
                let mut request = Request::from_parts(parts, BufferedBody::new(bytes));
                request.extensions_mut().insert(Attempt::FIRST);
                request.extensions_mut().insert(CallDeadline {
                    at: started + deadline,
                    after: deadline,
                });
                stack.oneshot(request).await.map_err(CallError::from_stack)
            };
            match tokio::time::timeout(deadline, call).await {
                Ok(result) => result,
                Err(_elapsed) => Err(CallError::DeadlineExceeded { after: deadline }),
            }
        })
    }
}

/// The absolute `https` URI a request goes to.
fn target(shared: &Shared, uri: Uri) -> Result<Uri, CallError> {
    match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) => {
            if *scheme != Scheme::HTTPS {
                return Err(CallError::NotHttps {
                    scheme: scheme.as_str().to_owned(),
                });
            }
            if authority.host().is_empty() {
                return Err(CallError::InvalidUri {
                    reason: "the URI has no host",
                });
            }
            Ok(uri)
        }
        (None, None) => match &shared.base_url {
            Some(base) => base.join(&uri),
            None => Err(CallError::InvalidUri {
                reason: "a relative URI needs a base URL",
            }),
        },
        _ => Err(CallError::InvalidUri {
            reason: "the URI is neither absolute nor relative",
        }),
    }
}

fn buffer_error(error: BufferError) -> CallError {
    match error {
        BufferError::TooLarge { limit } => CallError::BodyTooLarge { limit },
        BufferError::Read(error) => CallError::Body(error),
        // `BufferError` is non-exhaustive.
        other => CallError::Body(Box::new(other)),
    }
}
