//! The edge's thread-per-core shape: one current-thread runtime per worker, each on its own thread,
//! serving its own listener (the listeners share the port through `SO_REUSEPORT`). Nothing is
//! handed between threads: a connection lives and dies on the thread whose listener took it.

use std::thread::JoinHandle;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

const TOTAL_BLOCKING_THREADS: usize = 512;
const MIN_BLOCKING_THREADS: usize = 16;

/// The per-core runtimes, running until [`Runtimes::stop`].
#[derive(Default)]
pub struct Runtimes {
    cores: Vec<(Handle, oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Runtimes {
    pub fn start(workers: usize) -> anyhow::Result<Runtimes> {
        // Blocking threads (reads, read-ahead, index builds): tokio's default for one runtime,
        // shared out, so that many cores do not multiply it.
        let blocking = (TOTAL_BLOCKING_THREADS / workers.max(1)).max(MIN_BLOCKING_THREADS);
        let mut cores = Vec::with_capacity(workers);
        for i in 0..workers {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("edge-{i}"))
                .spawn(move || {
                    let mut builder = tokio::runtime::Builder::new_current_thread();
                    builder.enable_all().max_blocking_threads(blocking);
                    let runtime = match builder.build() {
                        Ok(runtime) => runtime,
                        Err(e) => return drop(handle_tx.send(Err(e))),
                    };
                    let _ = handle_tx.send(Ok(runtime.handle().clone()));
                    runtime.block_on(async move { drop(stop_rx.await) });
                    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                })
                .context("starting an edge thread")?;
            let handle =
                handle_rx.recv().context("an edge thread ended at once")?.context("building an edge runtime")?;
            cores.push((handle, stop_tx, thread));
        }
        Ok(Runtimes { cores })
    }

    pub fn handles(&self) -> Vec<Handle> {
        self.cores.iter().map(|(handle, _, _)| handle.clone()).collect()
    }

    /// Ends every runtime (their tasks are dropped) and waits for their threads.
    pub fn stop(self) {
        for (_, stop, thread) in self.cores {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}
