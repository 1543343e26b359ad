//! The connector value of this instance. A component instance is single-threaded and the host calls `open`
//! before anything else, so one thread-local slot is enough.

use std::any::Any;
use std::cell::RefCell;

use crate::{Error, Outcome};

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

pub fn set<T: 'static>(value: T) {
    INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(value)));
}

pub fn clear() {
    INSTANCE.with(|slot| *slot.borrow_mut() = None);
}

/// Runs `f` on the open connector, or says that `open` has not succeeded yet.
pub fn with<T: 'static, R>(f: impl FnOnce(&mut T) -> R) -> Result<R, Error> {
    INSTANCE.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot.as_mut().and_then(|b| b.downcast_mut::<T>()) {
            Some(value) => Ok(f(value)),
            None => Err(Error::fatal(
                "the connector is not open: the host must call `open` first",
            )),
        }
    })
}

/// The outcomes of a batch written before `open`.
pub fn not_open_outcomes(n: usize, error: Error) -> Vec<Outcome> {
    (0..n)
        .map(|_| Outcome::Fatal(error.message.clone()))
        .collect()
}
