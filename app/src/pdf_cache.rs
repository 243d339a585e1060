//! Rendered PDFs kept in memory by their recorded digest, so a second download of a document
//! (a customer opening it again, a portal listing) costs no render. A digest names exactly
//! one byte string, so an entry never goes stale; the least recently used leave first.

use std::sync::{Arc, Mutex};

use hashlink::LruCache;

/// How many documents are kept: an invoice PDF is 20–40 kB from renderer 1 and about 100 kB
/// from renderer 2 (its fonts shared, not cut to the document), so at most about 25 MB.
const CAPACITY: usize = 256;

pub struct PdfCache {
    entries: Mutex<LruCache<String, Arc<Vec<u8>>>>,
}

impl Default for PdfCache {
    fn default() -> Self {
        PdfCache {
            entries: Mutex::new(LruCache::new(CAPACITY)),
        }
    }
}

impl PdfCache {
    pub fn get(&self, sha256: &str) -> Option<Arc<Vec<u8>>> {
        self.lock().get(sha256).cloned()
    }

    pub fn put(&self, sha256: String, bytes: Arc<Vec<u8>>) {
        self.lock().insert(sha256, bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<Vec<u8>>>> {
        // A panic while holding the lock cannot leave the map half-changed in a way that
        // matters: at worst an entry is missing.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_leaves_first() {
        let cache = PdfCache {
            entries: Mutex::new(LruCache::new(2)),
        };
        cache.put("a".into(), Arc::new(vec![1]));
        cache.put("b".into(), Arc::new(vec![2]));
        assert_eq!(cache.get("a").as_deref(), Some(&vec![1]));
        cache.put("c".into(), Arc::new(vec![3]));
        assert!(cache.get("b").is_none());
        assert_eq!(cache.get("a").as_deref(), Some(&vec![1]));
        assert_eq!(cache.get("c").as_deref(), Some(&vec![3]));
    }
}
