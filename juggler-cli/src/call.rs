//! `juggler call`: one request (0.6/0.7) or RPC call (0.5), its result
//! printed as one line of JSON.

use juggler_rpc::{Actions, RpcConnection, RpcError};
use juggler_tokio::{v07, ClientOptions, Generation};
use serde_json::Value;

use crate::cli::CallArgs;
use crate::exit::CliError;
use crate::output;

/// Runs `juggler call`: the whole of it, connecting included, within
/// `--timeout`.
pub async fn run(args: CallArgs, options: ClientOptions) -> Result<(), CliError> {
    let generation = args.client.generation();
    let url = args.client.url;
    let call = async {
        match generation {
            Generation::V0_5 => call_0_5(&url, options, &args.name, args.data).await,
            _ => call_v07(&url, generation, options, &args.name, args.data).await,
        }
    };
    match tokio::time::timeout(args.timeout, call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(CliError::Timeout(args.timeout)),
    }
}

async fn call_v07(
    url: &str,
    generation: Generation,
    options: ClientOptions,
    name: &str,
    data: Option<Value>,
) -> Result<(), CliError> {
    let client = v07::connect_with(url, v07::Options::default().generation(generation), options)
        .await
        .map_err(CliError::connection)?;
    let answer = client.send(name, data.unwrap_or(Value::Null)).await;
    let printed = match answer {
        Ok(result) => Ok(output::line(&result)),
        Err(juggler_tokio::Error::Remote(data)) => Err(CliError::Remote(data)),
        Err(err) => Err(CliError::connection(err)),
    };
    client.async_close().await;
    // A closed stdout is no failure of the call.
    printed.map(drop)
}

async fn call_0_5(
    url: &str,
    options: ClientOptions,
    name: &str,
    data: Option<Value>,
) -> Result<(), CliError> {
    let args = match data {
        None => Vec::new(),
        Some(Value::Array(args)) => args,
        Some(_) => {
            return Err(CliError::Usage(
                "invalid value for '[DATA]': a 0.5 call's data is a JSON array of arguments".into(),
            ))
        }
    };
    let connection = juggler_tokio::connect_with(url, options)
        .await
        .map_err(CliError::connection)?;
    let rpc = RpcConnection::new(connection, Actions::new());
    let answer = rpc.call(name, args).await;
    let printed = match answer {
        Ok(result) => Ok(output::line(&result)),
        Err(RpcError::Remote(data)) => Err(CliError::Remote(data)),
        Err(RpcError::Timeout) => Err(CliError::Connection("the call timed out".into())),
        Err(err) => Err(CliError::connection(err)),
    };
    rpc.shutdown().await;
    printed.map(drop)
}
