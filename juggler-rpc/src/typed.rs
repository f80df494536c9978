//! Actions declared once, as types, for both the side that runs them and
//! the side that calls them.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An RPC action declared once: its name on the wire, its arguments and
/// its result. [`Actions::handle`](crate::Actions::handle) registers a
/// handler for it, [`RpcConnection::invoke`](crate::RpcConnection::invoke)
/// calls it, and the compiler checks that both sides agree on the types.
///
/// `Args` is what the request's `args` array deserializes into: a tuple
/// for positional arguments (`(i64,)`, `(String, bool)`), `()` for none.
/// The wire format stays the reference's, so a Python or browser peer
/// calls the same action by its name with a plain array.
///
/// ```
/// use juggler_rpc::Action;
///
/// /// `reverse(text) -> text reversed`
/// pub struct Reverse;
///
/// impl Action for Reverse {
///     const NAME: &'static str = "reverse";
///     type Args = (String,);
///     type Output = String;
/// }
/// ```
pub trait Action {
    /// The action's name in requests.
    const NAME: &'static str;
    /// The request's `args`, as a tuple (or a struct that deserializes
    /// from a sequence).
    type Args: Serialize + DeserializeOwned;
    /// The response's `result` on success.
    type Output: Serialize + DeserializeOwned;
}
