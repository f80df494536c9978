//! `juggler send`: one 0.5 MESSAGE.

use juggler_tokio::{ClientOptions, CloseReason};

use crate::cli::{GenerationArg, SendArgs};
use crate::exit::CliError;

/// Runs `juggler send`: connects as a 0.5 client, sends the message and
/// closes once it is written (the close flushes what is queued).
pub async fn run(args: SendArgs, options: ClientOptions) -> Result<(), CliError> {
    if args
        .client
        .generation
        .is_some_and(|generation| generation != GenerationArg::V0_5)
    {
        return Err(CliError::Usage(
            "invalid value for '--generation': `send` sends a 0.5 message; 0.6/0.7 clients \
             make requests with `juggler call`"
                .into(),
        ));
    }
    let connection = juggler_tokio::connect_with(&args.client.url, options)
        .await
        .map_err(CliError::connection)?;
    connection
        .send(&args.data)
        .await
        .map_err(CliError::connection)?;
    match connection.shutdown().await {
        CloseReason::Local | CloseReason::Remote => Ok(()),
        reason => Err(CliError::Connection(format!(
            "the message may not have been written: {reason}"
        ))),
    }
}
