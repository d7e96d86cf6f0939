//! Ctrl-C and SIGTERM as one signal every long-running command stops on.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

/// Fires once on SIGINT or SIGTERM; every clone of [`Shutdown::signal`] completes then.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Starts listening for SIGINT and SIGTERM. From now on they no longer kill the process:
    /// they ask the command to stop cleanly.
    pub fn listen() -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            farm_io::telemetry::sigterm().await;
            let _ = tx.send(true);
            // Keep the sender, so that waiting receivers see `true` and never a closed channel.
            std::future::pending::<()>().await;
        });
        Self { rx }
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// A future that completes when a stop is asked for.
    pub fn signal(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let mut rx = self.rx.clone();
        Box::pin(async move {
            if rx.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
