//! The future of [`ReplayGuard`](crate::ReplayGuard): the one claim-then-call future of the
//! workspace (`TranzilaVerifyLayer` runs its claims through it too).
//!
//! Polling after completion returns `Poll::Pending`, as every tollgate future does (see
//! [`tollgate_core::future`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tollgate_core::ResponseBody;
use tollgate_core::metrics::{self, ClaimOutcome, LayerName};
use tower_service::Service;

use crate::guard::{ReplayError, ReplayTicket};
use crate::layer::Config;
use crate::store::{Claim, ClaimId, StoreError};

type OwnedClaim = Pin<Box<dyn Future<Output = (Result<Claim, StoreError>, ReplayTicket)> + Send>>;
type OwnedRelease = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send>>;

pin_project! {
    /// The response future of [`ReplayGuard`](crate::ReplayGuard): a refusal ready at once, or
    /// the claim, then the inner call, then (when the handling failed) the release of the
    /// claim.
    #[must_use = "futures do nothing unless polled"]
    pub struct ReplayGuardFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Rejected {
            response: Option<Response<Bytes>>,
        },
        Claiming {
            #[pin]
            claim: OwnedClaim,
            call: Option<(S, Request<ReqBody>)>,
            config: Arc<Config>,
            id: ClaimId,
        },
        Inner {
            #[pin]
            future: S::Future,
            release: Option<(Arc<Config>, ReplayTicket, ClaimId)>,
        },
        Releasing {
            #[pin]
            release: OwnedRelease,
            output: Option<Result<S::Response, S::Error>>,
        },
        Done,
    }
}

impl<S, ReqBody> ReplayGuardFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    /// The guard's own answer, ready at once; also what a verifier that wraps the guard
    /// answers its own refusals with (tollgate-tranzila's verify layer).
    #[doc(hidden)]
    pub fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    /// Claims `ticket` in the store, then calls the ready `inner` with `request`.
    pub(crate) fn claiming(
        config: Arc<Config>,
        ticket: ReplayTicket,
        inner: S,
        request: Request<ReqBody>,
    ) -> Self {
        let store = Arc::clone(&config.store);
        let id = ClaimId::new();
        let claim: OwnedClaim = Box::pin(async move {
            let started = Instant::now();
            // A timestamped message may come again signed later (a resent Standard Webhooks
            // id): a refused one extends the claim to its own window. A body-only message's
            // retention counts from its acceptance, so its replays do not.
            let outcome = if ticket.timestamp().is_some() {
                store.claim_extending(ticket.key(), ticket.expires_at(), id)
            } else {
                store.claim_with_id(ticket.key(), ticket.expires_at(), id)
            }
            .await;
            let recorded = match &outcome {
                Ok(Claim::Claimed) => ClaimOutcome::Claimed,
                Ok(Claim::AlreadySeen) => ClaimOutcome::Replayed,
                Err(StoreError::Full) => ClaimOutcome::Full,
                Err(_) => ClaimOutcome::Error,
            };
            metrics::nonce_claim(store.kind(), recorded, started.elapsed());
            (outcome, ticket)
        });
        Self {
            state: State::Claiming {
                claim,
                call: Some((inner, request)),
                config,
                id,
            },
        }
    }
}

/// Whether a handling failed in a way its sender retries: the claim is released.
fn handling_failed<B, E>(output: &Result<Response<B>, E>) -> bool {
    match output {
        Ok(response) => {
            response.status().is_server_error()
                || response.status() == StatusCode::TOO_MANY_REQUESTS
        }
        Err(_) => true,
    }
}

impl<S, ReqBody, ResBody> Future for ReplayGuardFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Rejected { response } => {
                    let Some(response) = response.take() else {
                        return Poll::Pending;
                    };
                    state.set(State::Done);
                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                }
                StateProj::Claiming {
                    claim,
                    call,
                    config,
                    id,
                } => {
                    let (outcome, ticket) = ready!(claim.poll(cx));
                    let error = match outcome {
                        Ok(Claim::Claimed) => None,
                        Ok(Claim::AlreadySeen) => Some(ReplayError::Replayed),
                        Err(err) => {
                            tracing::warn!(target: "tollgate", error = %err, "nonce store failed; request refused");
                            Some(ReplayError::Store(err))
                        }
                    };
                    match (error, call.take()) {
                        (None, Some((mut inner, mut request))) => {
                            metrics::allowed(LayerName::Replay, request.extensions_mut());
                            let future = inner.call(request);
                            // Only a message whose body the signature covers may be retried.
                            let release = ticket
                                .releasable()
                                .then(|| (Arc::clone(config), ticket, *id));
                            state.set(State::Inner { future, release });
                        }
                        (Some(error), _) => {
                            let response = config
                                .responder
                                .refuse(LayerName::Replay, error.to_rejection());
                            state.set(State::Done);
                            return Poll::Ready(Ok(response.map(ResponseBody::own)));
                        }
                        // Unreachable: the call is taken once, right before leaving this state.
                        (None, None) => {
                            state.set(State::Done);
                            return Poll::Pending;
                        }
                    }
                }
                StateProj::Inner { future, release } => {
                    let output = ready!(future.poll(cx));
                    match release.take() {
                        Some((config, ticket, id)) if handling_failed(&output) => {
                            let release: OwnedRelease = Box::pin(async move {
                                let released = config.store.release(ticket.key(), id).await;
                                if released.is_err() {
                                    metrics::nonce_store_error(config.store.kind());
                                }
                                released
                            });
                            state.set(State::Releasing {
                                release,
                                output: Some(output),
                            });
                        }
                        _ => {
                            state.set(State::Done);
                            return Poll::Ready(
                                output.map(|response| response.map(ResponseBody::inner)),
                            );
                        }
                    }
                }
                StateProj::Releasing { release, output } => {
                    match ready!(release.poll(cx)) {
                        Ok(true) => tracing::debug!(
                            target: "tollgate",
                            "handling failed; nonce claim released so the sender can retry"
                        ),
                        Ok(false) => tracing::warn!(
                            target: "tollgate",
                            "handling failed but the nonce claim could not be released (the store does not release, or the claim expired); a retry may be refused as replayed"
                        ),
                        Err(err) => tracing::warn!(
                            target: "tollgate",
                            error = %err,
                            "handling failed and releasing the nonce claim failed; a retry will be refused as replayed until the claim expires"
                        ),
                    }
                    let output = output.take();
                    state.set(State::Done);
                    return match output {
                        Some(output) => {
                            Poll::Ready(output.map(|response| response.map(ResponseBody::inner)))
                        }
                        // Unreachable: the output is taken once, right before `Done`.
                        None => Poll::Pending,
                    };
                }
                // Polled after completion: stays pending, never a second answer.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<S, ReqBody> fmt::Debug for ReplayGuardFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Rejected { .. } => "rejected",
            State::Claiming { .. } => "claiming",
            State::Inner { .. } => "inner",
            State::Releasing { .. } => "releasing",
            State::Done => "done",
        };
        f.debug_tuple("ReplayGuardFuture").field(&state).finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use tollgate_core::ManualClock;
    use tower::{ServiceExt, service_fn};

    use crate::store::{ClaimFuture, NonceStore};
    use crate::{MemoryNonceStore, ReplayGuardLayer};

    use super::*;

    const NOW: u64 = 1_700_000_000;

    /// A store that always fails: `custom`, `error`.
    #[derive(Debug)]
    struct Down;

    impl NonceStore for Down {
        fn claim<'a>(&'a self, _: &'a [u8], _: u64) -> ClaimFuture<'a> {
            Box::pin(std::future::ready(Err(StoreError::Timeout)))
        }
    }

    /// Sends one Standard Webhooks request with message id `id` (and time `time`) through
    /// `layer`; answers the status.
    async fn send(layer: &ReplayGuardLayer, id: &str, time: &str) -> u16 {
        let service = tower::ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_: Request<()>| async {
                Ok::<_, Infallible>(Response::new(()))
            }));
        let request = Request::builder()
            .header("webhook-id", id)
            .header("webhook-timestamp", time)
            .body(())
            .unwrap();
        service.oneshot(request).await.unwrap().status().as_u16()
    }

    fn lines(snapshot: metrics_util::debugging::Snapshot) -> Vec<String> {
        let mut lines: Vec<String> = snapshot
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels: Vec<String> = key
                    .labels()
                    .map(|label| format!("{}={}", label.key(), label.value()))
                    .collect();
                let value = match value {
                    DebugValue::Counter(n) => n.to_string(),
                    DebugValue::Gauge(g) => g.to_string(),
                    DebugValue::Histogram(values) => format!("{} samples", values.len()),
                };
                format!("{}{{{}}} {value}", key.name(), labels.join(","))
            })
            .collect();
        lines.sort();
        lines
    }

    #[tokio::test]
    async fn claims_refusals_fullness_and_store_errors_are_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = ::metrics::set_default_local_recorder(&recorder);

        let clock = ManualClock::new(NOW);
        // One shard of 4 slots: an effective capacity of 3.
        let store = MemoryNonceStore::new(3)
            .with_shards(1)
            .with_clock(clock.clone());
        let guard = ReplayGuardLayer::standard_webhooks(store).clock(clock.clone());
        let now = NOW.to_string();
        assert_eq!(send(&guard, "msg_1", &now).await, 200);
        assert_eq!(send(&guard, "msg_1", &now).await, 401); // replayed
        assert_eq!(send(&guard, "msg_2", &now).await, 200);
        assert_eq!(send(&guard, "msg_3", &now).await, 200);
        assert_eq!(send(&guard, "msg_4", &now).await, 503); // full
        assert_eq!(send(&guard, "msg_5", "+1").await, 400); // never reaches the store
        let down = ReplayGuardLayer::standard_webhooks(Down).clock(clock);
        assert_eq!(send(&down, "msg_6", &now).await, 503);
        drop(guard);

        assert_eq!(
            lines(snapshotter.snapshot()),
            [
                "tollgate_nonce_claim_duration_seconds{store=custom} 1 samples",
                "tollgate_nonce_claim_duration_seconds{store=memory} 5 samples",
                "tollgate_nonce_claims_total{store=custom,outcome=error} 1",
                "tollgate_nonce_claims_total{store=memory,outcome=claimed} 3",
                "tollgate_nonce_claims_total{store=memory,outcome=full} 1",
                "tollgate_nonce_claims_total{store=memory,outcome=replayed} 1",
                // Three entries held by the store, then dropped with it; the capacity of
                // the stores built (and dropped) on the way: 3 each.
                "tollgate_nonce_store_capacity{store=memory} 0",
                "tollgate_nonce_store_entries{store=memory} 0",
                "tollgate_nonce_store_errors_total{store=custom} 1",
                "tollgate_nonce_store_errors_total{store=memory} 1",
                "tollgate_requests_allowed_total{layer=replay} 3",
                "tollgate_requests_refused_total{layer=replay,code=replayed} 1",
                "tollgate_requests_refused_total{layer=replay,code=store_full} 1",
                "tollgate_requests_refused_total{layer=replay,code=store_unavailable} 1",
                "tollgate_requests_refused_total{layer=replay,code=timestamp_malformed} 1",
            ]
        );
    }

    #[tokio::test]
    async fn the_entries_gauge_follows_a_live_store() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = ::metrics::set_default_local_recorder(&recorder);

        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(3)
            .with_shards(1)
            .with_clock(clock.clone());
        let guard = ReplayGuardLayer::standard_webhooks(store.clone()).clock(clock.clone());
        let now = NOW.to_string();
        assert_eq!(send(&guard, "msg_1", &now).await, 200);
        assert_eq!(send(&guard, "msg_2", &now).await, 200);
        let snapshot = lines(snapshotter.snapshot());
        assert!(
            snapshot.contains(&"tollgate_nonce_store_entries{store=memory} 2".to_owned()),
            "{snapshot:?}"
        );
        // Gauges are sums of increments: each store built adds its capacity, each dropped
        // one takes it off. `new` then `with_shards` then `with_clock`: 3 stores, 2 dropped.
        assert!(
            snapshot.contains(&"tollgate_nonce_store_capacity{store=memory} 3".to_owned()),
            "{snapshot:?}"
        );
        drop((guard, store));
    }
}
