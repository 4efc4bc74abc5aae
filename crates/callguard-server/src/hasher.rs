//! Argon2id off the async runtime, in bounded memory. One dedicated thread per core hashes,
//! each reusing its own 19 MiB Argon2 buffer, so hashing memory is fixed at cores × 19 MiB
//! however many sign-ins arrive (allocating per hash lets the allocator's per-thread pools grow
//! into gigabytes). Admission is decided first and cheaply: at most a bounded number of hashes
//! may be running or waiting; beyond that a sign-in is refused at once with "busy", before it
//! costs the database anything.

use callguard_core::password::{HashWorker, DUMMY_HASH};
use callguard_core::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Why hashing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("too many sign-ins are waiting; try again in a moment")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

type Job = Box<dyn FnOnce(&mut HashWorker) + Send>;

struct Inner {
    jobs: Mutex<mpsc::Sender<Job>>,
    in_flight: AtomicUsize,
    capacity: usize,
}

/// The shared hashing service.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

/// A reserved place in the hashing queue; released when dropped.
pub struct Permit {
    inner: Arc<Inner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    /// `workers` threads hash; at most `max_waiting` more hashes may queue.
    #[must_use]
    pub fn new(workers: usize, max_waiting: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = workers.max(1);
        for n in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("callguard-argon2-{n}"))
                .spawn(move || {
                    let mut worker = HashWorker::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut worker),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a hashing thread");
            }
        }
        Self {
            inner: Arc::new(Inner {
                jobs: Mutex::new(tx),
                in_flight: AtomicUsize::new(0),
                capacity: workers + max_waiting,
            }),
        }
    }

    /// One worker per core, and a queue of 64 per worker.
    #[must_use]
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, cores * 64)
    }

    /// Reserves a place for one hash, or answers `Busy` at once.
    pub fn reserve(&self) -> Result<Permit, HashingError> {
        if self.inner.in_flight.fetch_add(1, Ordering::AcqRel) >= self.inner.capacity {
            self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(HashingError::Busy);
        }
        Ok(Permit {
            inner: self.inner.clone(),
        })
    }

    async fn run<R: Send + 'static>(
        &self,
        permit: Permit,
        f: impl FnOnce(&mut HashWorker) -> R + Send + 'static,
    ) -> Result<R, HashingError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |worker| {
            let out = f(worker);
            drop(permit);
            let _ = tx.send(out);
        });
        self.inner
            .jobs
            .lock()
            .map_err(|_| HashingError::Failed)?
            .send(job)
            .map_err(|_| HashingError::Failed)?;
        rx.await.map_err(|_| HashingError::Failed)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Secret<String>) -> Result<String, HashingError> {
        let permit = self.reserve()?;
        self.run(permit, move |w| w.hash(&password))
            .await?
            .map_err(|_| HashingError::Failed)
    }

    /// Verifies a password in a place reserved beforehand; with `None` it verifies against a
    /// dummy hash so that unknown users cost the same time, and answers false.
    pub async fn verify_reserved(
        &self,
        permit: Permit,
        password: Secret<String>,
        phc: Option<String>,
    ) -> Result<bool, HashingError> {
        self.run(permit, move |w| match phc {
            Some(h) => w.verify(&password, &h),
            None => {
                let _ = w.verify(&password, &DUMMY_HASH);
                false
            }
        })
        .await
    }

    /// Reserves and verifies.
    pub async fn verify(
        &self,
        password: Secret<String>,
        phc: Option<String>,
    ) -> Result<bool, HashingError> {
        let permit = self.reserve()?;
        self.verify_reserved(permit, password, phc).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let h = Hasher::new(1, 4);
        let phc = h
            .hash(Secret::from("a sufficiently long phrase"))
            .await
            .unwrap();
        assert!(h
            .verify(Secret::from("a sufficiently long phrase"), Some(phc))
            .await
            .unwrap());
        assert!(!h
            .verify(Secret::from("a sufficiently long phrase"), None)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_instead_of_growing() {
        let h = Hasher::new(1, 0);
        let held = h.reserve().unwrap();
        assert!(matches!(h.reserve(), Err(HashingError::Busy)));
        assert!(matches!(
            h.hash(Secret::from("whatever long enough")).await,
            Err(HashingError::Busy)
        ));
        drop(held);
        assert!(h.reserve().is_ok(), "a released place can be taken again");
    }
}
