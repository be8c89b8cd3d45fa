//! Header hygiene: what an outbound request may carry to a provider
//! ([`HeaderHygieneLayer`]), and which client-supplied headers an inbound request loses
//! ([`InboundHygieneLayer`]). Neither layer ever refuses a request. The header-name lists and
//! the `Connection`/`TE` parsing are plain functions in `names`.

mod inbound;
pub(crate) mod names;
mod outbound;

pub use inbound::{InboundHygiene, InboundHygieneLayer};
pub use outbound::{HeaderHygiene, HeaderHygieneLayer, HygieneReport};
