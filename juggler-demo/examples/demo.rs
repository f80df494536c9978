//! The juggler-rs demo: open the printed URL in a browser.
//!
//! Run with `cargo run --example demo` (set `JUGGLER_DEMO_PORT` to choose
//! the port; default 23023, or any free one if that is taken).

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
    let demo = match Demo::start("127.0.0.1", port).await {
        Ok(demo) => demo,
        Err(err) => {
            eprintln!("port {port} is not free ({err}); using any free port");
            Demo::start("127.0.0.1", 0).await?
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
