//! [`InjectedHeaders`]: the request extension naming headers the backend set itself (defined
//! in tollgate-core, so that tollgate-client-ip's `ForwardUserIpLayer` records into the same
//! type).

pub use tollgate_core::InjectedHeaders;
