//! Argon2id off the async runtime. Hashes run on blocking threads, at most one per core at a
//! time (a semaphore), and at most a bounded number wait: beyond that a sign-in is refused at
//! once with "busy", so a flood of sign-ins cannot grow memory without limit (each hash needs
//! 19 MiB while it runs).

use callguard_core::password;
use callguard_core::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Why hashing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("too many sign-ins are waiting; try again in a moment")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

/// The shared hashing service.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl Hasher {
    /// `workers` hashes run at once; `max_waiting` more may queue.
    #[must_use]
    pub fn new(workers: usize, max_waiting: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// One worker per core, and a queue of 64 per worker.
    #[must_use]
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, cores * 64)
    }

    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HashingError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashingError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|_| HashingError::Failed)?;
        let out = tokio::task::spawn_blocking(move || {
            let r = f();
            drop(permit);
            r
        })
        .await
        .map_err(|_| HashingError::Failed)?;
        Ok(out)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Secret<String>) -> Result<String, HashingError> {
        self.run(move || password::hash(&password))
            .await?
            .map_err(|_| HashingError::Failed)
    }

    /// Verifies a password; with `None` it verifies against a dummy hash so that unknown users
    /// cost the same time, and answers false.
    pub async fn verify(
        &self,
        password: Secret<String>,
        phc: Option<String>,
    ) -> Result<bool, HashingError> {
        self.run(move || match phc {
            Some(h) => password::verify(&password, &h),
            None => {
                let _ = password::verify(&password, &password::DUMMY_HASH);
                false
            }
        })
        .await
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
        assert!(matches!(
            h.hash(Secret::from("whatever long enough")).await,
            Err(HashingError::Busy)
        ));
    }
}
