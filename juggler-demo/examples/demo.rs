//! The juggler-rs demo: open the printed URL in a browser.
//!
//! Run with `cargo run --example demo` (set `JUGGLER_DEMO_PORT` to choose
//! the port; default 23023, or any free one if that is taken). With
//! `JUGGLER_DEMO_REDIS=redis://127.0.0.1:6379`, every demo process on that
//! Redis shows one counter, one list of names and one client count.

use juggler_demo::Demo;

#[tokio::main]
async fn main() -> Result<(), juggler_tokio::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let port = std::env::var("JUGGLER_DEMO_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(23023);
    let redis = std::env::var("JUGGLER_DEMO_REDIS")
        .ok()
        .filter(|url| !url.is_empty());
    let demo = match Demo::start_clustered("127.0.0.1", port, redis.as_deref()).await {
        Ok(demo) => demo,
        Err(juggler_tokio::Error::Config(err)) => {
            return Err(juggler_tokio::Error::Config(err));
        }
        Err(err) => {
            eprintln!("port {port} is not free ({err}); using any free port");
            Demo::start_clustered("127.0.0.1", 0, redis.as_deref()).await?
        }
    };
    println!(
        "juggler-rs demo: open {} (Ctrl-C stops it)",
        demo.page_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    demo.close().await;
    Ok(())
}
