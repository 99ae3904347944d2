//! One origin fetch for concurrent cache misses of the same object (origin shielding within an
//! instance). The first miss leads: it fetches and stores the object. Misses that come while it
//! does follow: they wait until the leader's copy is stored (or the leader gave up) and read
//! the cache again, fetching themselves only if it still misses.
//!
//! A flight lives in the instance's memory: on Workers an isolate serves many requests at once,
//! so this saves origin fetches; on Spin every request has its own instance and each flight has
//! one member. Across instances and locations the cache itself is what is shared.
//!
//! Followers look at the flight between short sleeps rather than being woken by the leader:
//! workerd cancels a request that waits on nothing but another request's work ("hung"), and a
//! timer is work of its own.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static FLIGHTS: RefCell<HashMap<String, Rc<Cell<bool>>>> = RefCell::default();
}

/// A miss's part in the flight for its key.
pub enum Joined {
    /// No flight for the key: this miss fetches, and holds the flight until its copy is stored.
    Leader(Lead),
    /// Another miss is fetching: wait until it has landed, then read the cache again.
    Follower(Landing),
}

/// Joins the flight for `key`, or starts it.
pub fn join(key: &str) -> Joined {
    FLIGHTS.with(|f| {
        let mut flights = f.borrow_mut();
        if let Some(landed) = flights.get(key) {
            return Joined::Follower(Landing(landed.clone()));
        }
        let landed = Rc::new(Cell::new(false));
        flights.insert(key.to_owned(), landed.clone());
        Joined::Leader(Lead {
            key: key.to_owned(),
            landed,
        })
    })
}

/// The leader's hold on a flight: dropping it (the copy stored, or the fetch failed) ends the
/// flight.
pub struct Lead {
    key: String,
    landed: Rc<Cell<bool>>,
}

impl Drop for Lead {
    fn drop(&mut self) {
        FLIGHTS.with(|f| f.borrow_mut().remove(&self.key));
        self.landed.set(true);
    }
}

/// A follower's view of the flight.
pub struct Landing(Rc<Cell<bool>>);

impl Landing {
    /// Whether the leader is done.
    pub fn landed(&self) -> bool {
        self.0.get()
    }
}

#[cfg(test)]
mod tests {
    use super::{join, Joined};

    #[test]
    fn later_misses_follow_the_first_until_it_lands() {
        let Joined::Leader(lead) = join("k") else {
            panic!("the first miss leads")
        };
        let Joined::Follower(landing) = join("k") else {
            panic!("a second miss follows")
        };
        assert!(matches!(join("other"), Joined::Leader(_)), "keys fly apart");
        assert!(!landing.landed());
        drop(lead);
        assert!(landing.landed());
        assert!(
            matches!(join("k"), Joined::Leader(_)),
            "a landed flight is gone"
        );
    }
}
