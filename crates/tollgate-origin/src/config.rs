//! [`Config`]: what a built layer holds, shared by the layer, every service it makes and
//! their futures.

use tollgate_core::RejectionResponder;

use crate::policy::Policy;

/// The validated configuration of an [`OriginAllowlistLayer`](crate::OriginAllowlistLayer),
/// behind an `Arc` in the layer and in every [`OriginAllowlist`](crate::OriginAllowlist).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The decision rules.
    pub(crate) policy: Policy,
    /// How refusals are answered.
    pub(crate) responder: RejectionResponder,
}
