//! Known keys by hash: every request authenticates, and most should not cost a query.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::principal::Principal;

/// How long a looked-up key is trusted without asking the database again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// A key's principal and when it was looked up, by the key's hash.
type CachedKeys = HashMap<Vec<u8>, (Principal, Instant)>;

/// A key's principal by the key's hash, for a minute.
#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<RwLock<CachedKeys>>,
}

impl KeyCache {
    /// The principal of the key with this hash, if looked up less than a minute ago.
    pub fn get(&self, hash: &[u8]) -> Option<Principal> {
        let entries = self.entries.read().ok()?;
        let (principal, at) = entries.get(hash)?;
        (at.elapsed() < KEY_CACHE_TTL).then(|| principal.clone())
    }

    pub fn insert(&self, hash: Vec<u8>, principal: Principal) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(hash, (principal, Instant::now()));
        }
    }
}
