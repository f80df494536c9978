//! juggler-tokio under the suite.

use std::future::Future;
use std::time::Duration;

use juggler_driver::{ClientOptions, Connection, Error, ServerOptions};

use crate::Backend;

/// juggler-tokio as a [`Backend`].
pub struct Tokio;

impl Backend for Tokio {
    type Server = juggler_tokio::Server;

    fn block_on<F: Future<Output = ()> + Send + 'static>(future: F) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        tokio::spawn(future);
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await
    }

    async fn listen_on(
        port: u16,
        options: ServerOptions,
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
    ) -> Result<Self::Server, Error> {
        juggler_tokio::listen("127.0.0.1", port, on_connection, options).await
    }

    fn reconnecting(
        addresses: Vec<String>,
        options: juggler_driver::ReconnectOptions,
    ) -> Result<juggler_driver::ReconnectingClient, Error> {
        juggler_tokio::reconnecting(addresses, options)
    }

    fn reconnecting_v07(
        addresses: Vec<String>,
        options: juggler_driver::v07::Options,
        reconnect: juggler_driver::ReconnectOptions,
    ) -> Result<juggler_driver::v07::ReconnectingClient, Error> {
        juggler_tokio::v07::reconnecting(addresses, options, reconnect)
    }

    fn alive_tasks() -> Option<usize> {
        Some(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        )
    }

    async fn connect(address: &str, options: ClientOptions) -> Result<Connection, Error> {
        juggler_tokio::connect_with(address, options).await
    }

    async fn connect_v07(
        address: &str,
        options: juggler_driver::v07::Options,
    ) -> Result<juggler_driver::v07::Client, Error> {
        juggler_tokio::v07::connect(address, options).await
    }

    async fn connect_v07_with(
        address: &str,
        options: juggler_driver::v07::Options,
        client: ClientOptions,
    ) -> Result<juggler_driver::v07::Client, Error> {
        juggler_tokio::v07::connect_with(address, options, client).await
    }

    async fn tcp_connect(
        addr: std::net::SocketAddr,
    ) -> std::io::Result<Box<dyn juggler_driver::Io>> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Box::new(async_tungstenite::tokio::TokioAdapter::new(
            stream,
        )))
    }
}
