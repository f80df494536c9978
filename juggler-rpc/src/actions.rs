//! The actions a connection answers requests with.

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The future an action runs as: the result, or the error text sent back
/// as the failed response's `result`.
pub type ActionFuture = Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'static>>;

type Handler = Arc<dyn Fn(Vec<Value>) -> ActionFuture + Send + Sync>;
type DefaultHandler = Arc<dyn Fn(String, Vec<Value>) -> ActionFuture + Send + Sync>;

/// The error text of a request for an action that does not exist (and no
/// default action is set), as the reference answers it.
pub const INVALID_ACTION: &str = "invalid action";

/// A registry of async actions by name, plus an optional default action.
///
/// Each action takes the request's JSON `args` and returns a result or an
/// error whose text ([`Display`]) becomes the failed response's `result`.
/// [`typed_action`](Self::typed_action) adds serde on top: arguments
/// deserialize from the `args` array (a tuple for positional arguments),
/// the result serializes back.
///
/// ```
/// use std::convert::Infallible;
/// use juggler_rpc::Actions;
/// use serde_json::{json, Value};
///
/// let actions = Actions::new()
///     .action("echo", |args: Vec<Value>| async move { Ok::<_, Infallible>(Value::Array(args)) })
///     .typed_action("add", |(a, b): (i64, i64)| async move {
///         a.checked_add(b).ok_or("overflow")
///     })
///     .default_action(|name: String, _args: Vec<Value>| async move {
///         Err::<Value, _>(format!("no action {name}"))
///     });
/// assert!(actions.contains("add"));
///
/// # futures_util::future::FutureExt::now_or_never(async {
/// assert_eq!(actions.run("add", vec![json!(2), json!(3)]).await, Ok(json!(5)));
/// assert_eq!(actions.run("zap", vec![]).await, Err("no action zap".to_owned()));
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Actions {
    actions: HashMap<String, Handler>,
    default: Option<DefaultHandler>,
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("Actions")
            .field("actions", &names)
            .field("default_action", &self.default.is_some())
            .finish()
    }
}

impl Actions {
    /// No actions: every request is answered `"invalid action"`.
    pub fn new() -> Self {
        Actions::default()
    }

    /// Registers (or replaces) the action `name`. Its error's text is what
    /// the caller gets as the remote error.
    #[must_use]
    pub fn action<F, Fut, E>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, E>> + Send + 'static,
        E: Display,
    {
        let handler: Handler = Arc::new(move |args| {
            let future = handler(args);
            Box::pin(async move { future.await.map_err(|err| err.to_string()) })
        });
        self.actions.insert(name.into(), handler);
        self
    }

    /// Registers (or replaces) the action `name` with typed arguments and
    /// result. The `args` array deserializes into `A`: a tuple such as
    /// `(i64,)` or `(String, Vec<u8>)` for positional arguments, or a
    /// struct that deserializes from a sequence; `()` takes no arguments.
    /// Arguments that do not
    /// deserialize answer `success: false` with the serde error text, and
    /// the handler does not run.
    #[must_use]
    pub fn typed_action<A, R, E, F, Fut>(self, name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned,
        R: Serialize,
        E: Display,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.action(name, move |args: Vec<Value>| {
            let started = deserialize_args::<A>(args).map(&handler);
            async move {
                let future = started.map_err(|err| format!("invalid arguments: {err}"))?;
                let result = future.await.map_err(|err| err.to_string())?;
                serde_json::to_value(result).map_err(|err| format!("invalid result: {err}"))
            }
        })
    }

    /// Registers the handler of an [`Action`](crate::Action) declared as
    /// a type: [`typed_action`](Self::typed_action) with its name and
    /// types, so the callers' [`invoke`](crate::RpcConnection::invoke)
    /// and this handler cannot disagree.
    ///
    /// ```
    /// use juggler_rpc::{Action, Actions};
    ///
    /// struct Double;
    /// impl Action for Double {
    ///     const NAME: &'static str = "double";
    ///     type Args = (i64,);
    ///     type Output = i64;
    /// }
    ///
    /// let actions = Actions::new()
    ///     .handle(Double, |(x,)| async move { x.checked_mul(2).ok_or("overflow") });
    /// assert!(actions.contains("double"));
    /// ```
    #[must_use]
    pub fn handle<A, F, Fut, E>(self, _action: A, handler: F) -> Self
    where
        A: crate::Action,
        E: Display,
        F: Fn(A::Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, E>> + Send + 'static,
    {
        self.typed_action(A::NAME, handler)
    }

    /// Sets the action that answers requests for names not registered: it
    /// gets the requested name first, then the arguments.
    #[must_use]
    pub fn default_action<F, Fut, E>(mut self, handler: F) -> Self
    where
        F: Fn(String, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, E>> + Send + 'static,
        E: Display,
    {
        self.default = Some(Arc::new(move |name, args| {
            let future = handler(name, args);
            Box::pin(async move { future.await.map_err(|err| err.to_string()) })
        }));
        self
    }

    /// Whether an action `name` is registered (the default action aside).
    pub fn contains(&self, name: &str) -> bool {
        self.actions.contains_key(name)
    }

    /// The names of the registered actions, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    /// Whether a default action is set.
    pub fn has_default_action(&self) -> bool {
        self.default.is_some()
    }

    /// Runs the action a request names, as a response would: the action
    /// `name`, else the default action with `name` first, else
    /// `Err("invalid action")`.
    pub fn run(&self, name: &str, args: Vec<Value>) -> ActionFuture {
        if let Some(handler) = self.actions.get(name) {
            handler(args)
        } else if let Some(default) = &self.default {
            default(name.to_owned(), args)
        } else {
            Box::pin(std::future::ready(Err(INVALID_ACTION.to_owned())))
        }
    }
}

/// The `args` array as `A`; no arguments also read as `()` (JSON `null`).
fn deserialize_args<A: DeserializeOwned>(args: Vec<Value>) -> Result<A, serde_json::Error> {
    if args.is_empty() {
        serde_json::from_value(Value::Array(args))
            .or_else(|err| serde_json::from_value(Value::Null).map_err(|_| err))
    } else {
        serde_json::from_value(Value::Array(args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use serde_json::json;
    use std::convert::Infallible;

    fn run_now(actions: &Actions, name: &str, args: Vec<Value>) -> Result<Value, String> {
        actions
            .run(name, args)
            .now_or_never()
            .expect("the action is ready")
    }

    async fn add_one(args: Vec<Value>) -> Result<Value, String> {
        match args.as_slice() {
            [Value::Number(n)] => n
                .as_i64()
                .and_then(|n| n.checked_add(1))
                .map(Value::from)
                .ok_or_else(|| format!("cannot add one to {n}")),
            other => Err(format!("expected one integer, got {other:?}")),
        }
    }

    #[test]
    fn runs_raw_actions() {
        let actions = Actions::new().action("act", add_one);
        assert_eq!(run_now(&actions, "act", vec![json!(123)]), Ok(json!(124)));
        let err = run_now(&actions, "act", vec![json!("abc")]).unwrap_err();
        assert!(err.contains("abc"), "{err}");
    }

    #[test]
    fn unknown_actions_are_invalid() {
        let actions = Actions::new().action("act", add_one);
        assert_eq!(
            run_now(&actions, "other", vec![]),
            Err("invalid action".to_owned())
        );
        assert_eq!(
            run_now(&Actions::new(), "", vec![]),
            Err(INVALID_ACTION.to_owned())
        );
    }

    #[test]
    fn default_action_gets_the_name_first() {
        let actions = Actions::new()
            .action("known", |_| async { Ok::<_, Infallible>(json!("known")) })
            .default_action(|name, args| async move {
                Ok::<_, Infallible>(json!({"name": name, "args": args}))
            });
        assert!(actions.has_default_action());
        assert_eq!(
            run_now(&actions, "x", vec![json!(1), json!(2)]),
            Ok(json!({"name": "x", "args": [1, 2]}))
        );
        assert_eq!(run_now(&actions, "known", vec![]), Ok(json!("known")));
    }

    #[test]
    fn typed_actions_deserialize_args_and_serialize_results() {
        #[derive(serde::Serialize)]
        struct Sum {
            total: i64,
        }
        let actions = Actions::new()
            .typed_action("add", |(a, b): (i64, i64)| async move {
                Ok::<_, Infallible>(Sum { total: a + b })
            })
            .typed_action("act", |(x,): (i64,)| async move {
                x.checked_add(1).ok_or("overflow")
            });
        assert_eq!(
            run_now(&actions, "add", vec![json!(2), json!(3)]),
            Ok(json!({"total": 5}))
        );
        assert_eq!(run_now(&actions, "act", vec![json!(123)]), Ok(json!(124)));
        assert_eq!(
            run_now(&actions, "act", vec![json!(i64::MAX)]),
            Err("overflow".to_owned())
        );
        let bad_type = run_now(&actions, "act", vec![json!("abc")]).unwrap_err();
        assert!(
            bad_type.starts_with("invalid arguments: invalid type: string \"abc\""),
            "{bad_type}"
        );
        let too_many = run_now(&actions, "act", vec![json!(1), json!(2)]).unwrap_err();
        assert!(too_many.starts_with("invalid arguments"), "{too_many}");
        let too_few = run_now(&actions, "add", vec![json!(1)]).unwrap_err();
        assert!(too_few.starts_with("invalid arguments"), "{too_few}");
    }

    #[test]
    fn typed_actions_without_arguments() {
        let actions = Actions::new()
            .typed_action("unit", |(): ()| async { Ok::<_, Infallible>("done") })
            .typed_action("list", |items: Vec<i64>| async move {
                Ok::<_, Infallible>(items.len())
            });
        assert_eq!(run_now(&actions, "unit", vec![]), Ok(json!("done")));
        assert!(run_now(&actions, "unit", vec![json!(1)]).is_err());
        assert_eq!(run_now(&actions, "list", vec![]), Ok(json!(0)));
        assert_eq!(
            run_now(&actions, "list", vec![json!(1), json!(2)]),
            Ok(json!(2))
        );
    }

    #[test]
    fn unserializable_results_fail_with_text() {
        let actions = Actions::new().typed_action("map", |(): ()| async {
            let mut map = std::collections::HashMap::new();
            map.insert(vec![1u8], 1);
            Ok::<_, Infallible>(map)
        });
        let err = run_now(&actions, "map", vec![]).unwrap_err();
        assert!(err.starts_with("invalid result: "), "{err}");
    }

    #[test]
    fn failing_actions_answer_their_error_text() {
        #[derive(Debug)]
        struct Custom;
        impl Display for Custom {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("custom failure")
            }
        }
        let actions = Actions::new().action("fail", |_| async { Err::<Value, _>(Custom) });
        assert_eq!(
            run_now(&actions, "fail", vec![]),
            Err("custom failure".to_owned())
        );
    }

    #[test]
    fn later_registration_replaces_and_debug_lists_names() {
        let actions = Actions::new()
            .action("a", |_| async { Ok::<_, Infallible>(json!(1)) })
            .action("a", |_| async { Ok::<_, Infallible>(json!(2)) })
            .action("b", |_| async { Ok::<_, Infallible>(json!(3)) });
        assert_eq!(run_now(&actions, "a", vec![]), Ok(json!(2)));
        let mut names: Vec<&str> = actions.names().collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            format!("{actions:?}"),
            r#"Actions { actions: ["a", "b"], default_action: false }"#
        );
    }
}
