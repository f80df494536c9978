//! The runtimes the suite runs on.

mod smol;
mod tokio;

pub use self::smol::Smol;
pub use self::tokio::Tokio;

impl crate::TestServer for juggler_driver::Server {
    fn url(&self) -> String {
        juggler_driver::Server::url(self).to_owned()
    }

    fn local_addr(&self) -> std::net::SocketAddr {
        juggler_driver::Server::local_addr(self)
    }

    async fn close(&self) -> juggler_driver::ShutdownSummary {
        juggler_driver::Server::close(self).await
    }

    fn connection_count(&self) -> usize {
        juggler_driver::Server::connection_count(self)
    }

    fn memory_budget(&self) -> std::sync::Arc<juggler_driver::MemoryBudget> {
        juggler_driver::Server::memory_budget(self).clone()
    }
}
