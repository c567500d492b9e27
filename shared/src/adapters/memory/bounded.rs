use std::collections::{BTreeMap, HashMap};

/// A string-keyed map that, given a capacity, forgets the entries written longest ago once it holds
/// more: the embedded store's stand-in for DynamoDB's TTL sweeper, so a long local run keeps
/// bounded memory. Without a capacity it is a plain map (tests and the conformance suite).
pub(crate) struct BoundedMap<V> {
    entries: HashMap<String, (u64, V)>,
    /// Write sequence number → key; the first entry is the least recently written.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    capacity: Option<usize>,
}

impl<V> Default for BoundedMap<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            capacity: None,
        }
    }
}

impl<V> BoundedMap<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: Some(capacity.max(1)),
            ..Self::default()
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// Inserts or replaces `key`, making it the most recently written, then evicts beyond capacity.
    pub fn insert(&mut self, key: &str, value: V) {
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.entries.get_mut(key) {
            Some(entry) => {
                self.order.remove(&entry.0);
                *entry = (seq, value);
            }
            None => {
                self.entries.insert(key.to_owned(), (seq, value));
            }
        }
        self.order.insert(seq, key.to_owned());
        if let Some(capacity) = self.capacity {
            while self.entries.len() > capacity {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let (seq, value) = self.entries.remove(key)?;
        self.order.remove(&seq);
        Some(value)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Drops the first (oldest: keys are time-ordered ids) entries of `log` beyond `capacity`.
pub(crate) fn keep_newest<V>(log: &mut BTreeMap<String, V>, capacity: Option<usize>) {
    if let Some(capacity) = capacity {
        while log.len() > capacity {
            log.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_keeps_everything() {
        let mut m = BoundedMap::default();
        for i in 0..1000 {
            m.insert(&i.to_string(), i);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get("0"), Some(&0));
    }

    #[test]
    fn forgets_the_least_recently_written_beyond_capacity() {
        let mut m = BoundedMap::with_capacity(3);
        m.insert("a", 1);
        m.insert("b", 2);
        m.insert("c", 3);
        // Rewriting `a` makes `b` the oldest write.
        m.insert("a", 10);
        m.insert("d", 4);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("b"), None);
        assert_eq!(m.get("a"), Some(&10));
        assert_eq!(m.get("c"), Some(&3));
        assert_eq!(m.get("d"), Some(&4));
        m.insert("e", 5);
        assert_eq!(m.get("c"), None);
    }

    #[test]
    fn remove_frees_a_slot_without_disturbing_order() {
        let mut m = BoundedMap::with_capacity(2);
        m.insert("a", 1);
        m.insert("b", 2);
        assert_eq!(m.remove("a"), Some(1));
        assert_eq!(m.remove("a"), None);
        m.insert("c", 3);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("b"), Some(&2));
        m.insert("d", 4);
        assert_eq!(m.get("b"), None);
        assert_eq!(m.order.len(), m.entries.len());
    }
}
