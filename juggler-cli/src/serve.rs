//! `juggler serve`: a mock server that shows a JSON file's content as the
//! state to clients of every generation on one `/ws`.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use juggler_rpc::{Actions, RpcConnection};
use juggler_tokio::{v07, Connection, Group, ServerOptions};
use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::cli::ServeArgs;
use crate::exit::CliError;
use crate::reload;

/// What requests and RPC calls are answered with: the reply named in
/// `--replies`, or else the request's own data.
#[derive(Debug, Default)]
struct Replies(Map<String, Value>);

impl Replies {
    fn answer(&self, name: &str, data: Value) -> Value {
        info!(name, "request");
        self.0.get(name).cloned().unwrap_or(data)
    }
}

/// Runs `juggler serve` until Ctrl-C or SIGTERM, then closes every
/// connection cleanly.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let state = reload::read_json(&args.file)
        .map_err(|err| CliError::Usage(format!("invalid value for '<FILE.json>': {err}")))?;
    let replies = match &args.replies {
        Some(path) => read_replies(path)?,
        None => Replies::default(),
    };
    let replies = Arc::new(replies);
    let group = Group::new(state);

    // With 0.7 handlers, every generation is served on one path.
    let mut options = ServerOptions::default().v07_handlers(v07_handlers(&group, &replies));
    if let Some(dir) = &args.static_dir {
        if !dir.is_dir() {
            return Err(CliError::Usage(format!(
                "invalid value '{}' for '--static <DIR>': not a folder",
                dir.display()
            )));
        }
        options = options.static_dir(dir);
    }
    let server = {
        let (group, replies) = (group.clone(), replies.clone());
        juggler_tokio::listen(
            &args.host,
            args.port,
            move |connection| accept_0_5(&group, &replies, connection),
            options,
        )
        .await
        .map_err(|err| {
            CliError::Connection(format!(
                "cannot listen on {}:{}: {err}",
                args.host, args.port
            ))
        })?
    };
    if crate::output::text(server.url()).is_err() {
        warn!("stdout is closed; serving on");
    }
    info!(url = server.url(), file = %args.file.display(), "serving");
    let _follow = reload::follow(args.file, group)?;
    shutdown_signal().await;
    info!("closing");
    server.close().await;
    Ok(())
}

fn read_replies(path: &Path) -> Result<Replies, CliError> {
    let invalid = |why: String| {
        CliError::Usage(format!(
            "invalid value '{}' for '--replies <FILE>': {why}",
            path.display()
        ))
    };
    match reload::read_json(path).map_err(invalid)? {
        Value::Object(replies) => Ok(Replies(replies)),
        _ => Err(invalid("not a JSON object of name to reply".into())),
    }
}

/// 0.6/0.7 clients join the group and get replies.
fn v07_handlers(group: &Group, replies: &Arc<Replies>) -> v07::Handlers {
    let (group, replies) = (group.clone(), replies.clone());
    v07::Handlers::new()
        .on_connection(move |connection| {
            if let Err(err) = group.join(&connection) {
                warn!("a connection could not join: {err}");
            }
        })
        .on_request(move |_connection, name, data| {
            let reply = replies.answer(&name, data);
            async move { Ok(reply) }
        })
}

/// A 0.5 client: the group's state is its remote data, its RPC calls get
/// replies (the arguments as one array), and its other messages are
/// logged.
fn accept_0_5(group: &Group, replies: &Arc<Replies>, connection: Connection) {
    let replies = replies.clone();
    let actions = Actions::new().default_action(move |name: String, args: Vec<Value>| {
        let reply = replies.answer(&name, Value::Array(args));
        async move { Ok::<_, Infallible>(reply) }
    });
    let rpc = RpcConnection::new(connection, actions);
    if let Err(err) = group.join(rpc.connection()) {
        warn!("a connection could not join: {err}");
    }
    tokio::spawn(async move {
        while let Ok(message) = rpc.receive().await {
            info!(data = %message, "message");
        }
    });
}

/// Ctrl-C, or SIGTERM where there is one.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
