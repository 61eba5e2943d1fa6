//! Lock acquisition that survives a poisoned lock. A panic while a lock is held is a bug, caught
//! and logged by the server; refusing every later request because of it would turn one bug into
//! an outage. The data behind these locks stays usable after such a panic: the disk index loses
//! at most the entry being changed, the flight map at most one flight (its waiters time out and
//! load themselves), and generations only ever move forward, so a half-applied bump is completed
//! by the next invalidation message or the periodic resync.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// [`read`] and [`write`] as methods, for lock expressions that span lines.
pub(crate) trait RwLockExt<T> {
    fn read_guard(&self) -> RwLockReadGuard<'_, T>;
    fn write_guard(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> RwLockExt<T> for RwLock<T> {
    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        read(self)
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        write(self)
    }
}
