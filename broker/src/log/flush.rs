//! Group commit for `--fsync always`: producers that append at about the same time share one fsync.
//!
//! A dedicated thread collects the files that appends touched. While it is fsyncing one group, new appends
//! queue for the next group, so the number of fsyncs per second stays bounded by the disk, not by the number
//! of producers. Waiters learn through a watch channel which group has reached the disk.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;
use tracing::error;

use crate::error::{Error, Result};

/// Which group has been synced, and whether every fsync so far succeeded.
#[derive(Debug, Clone, Copy)]
struct Synced {
    group: u64,
    healthy: bool,
}

struct State {
    pending: Vec<Arc<File>>,
    /// The group that pending files belong to.
    group: u64,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    synced: watch::Sender<Synced>,
}

pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl GroupCommit {
    pub fn start() -> Self {
        let (synced, _) = watch::channel(Synced {
            group: 0,
            healthy: true,
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                group: 1,
                shutdown: false,
            }),
            wake: Condvar::new(),
            synced,
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("busbar-fsync".into())
            .spawn(move || run(&worker))
            .expect("spawn fsync thread");
        Self {
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Registers `file` for the next fsync and returns the group number to wait for.
    pub fn request(&self, file: Arc<File>) -> u64 {
        let mut state = self.shared.state.lock().expect("fsync state");
        if !state.pending.iter().any(|f| Arc::ptr_eq(f, &file)) {
            state.pending.push(file);
        }
        let group = state.group;
        drop(state);
        self.shared.wake.notify_one();
        group
    }

    /// Resolves once `group` has been fsynced.
    pub async fn wait(&self, group: u64) -> Result<()> {
        let mut rx = self.shared.synced.subscribe();
        let synced = rx
            .wait_for(|s| s.group >= group || !s.healthy)
            .await
            .map_err(|_| Error::ShuttingDown)?;
        if synced.healthy {
            Ok(())
        } else {
            Err(Error::io(
                "log directory",
                std::io::Error::other("an earlier fsync failed; the log is no longer durable"),
            ))
        }
    }

    /// Syncs what is pending and stops the thread.
    pub fn stop(&self) {
        self.shared.state.lock().expect("fsync state").shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.lock().expect("fsync thread").take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared) {
    loop {
        let (files, group) = {
            let mut state = shared.state.lock().expect("fsync state");
            while state.pending.is_empty() && !state.shutdown {
                state = shared.wake.wait(state).expect("fsync state");
            }
            if state.pending.is_empty() && state.shutdown {
                return;
            }
            let group = state.group;
            state.group += 1;
            (std::mem::take(&mut state.pending), group)
        };
        let mut healthy = true;
        for file in &files {
            if let Err(err) = file.sync_data() {
                error!(error = %err, "fsync failed; acknowledging no more writes as durable");
                healthy = false;
            }
        }
        shared.synced.send_modify(|s| {
            s.group = group;
            s.healthy &= healthy;
        });
    }
}
