//! An ordered set that answers "how many are ahead of me" without walking the whole line.
//!
//! `BTreeSet` has no rank query, and counting a range is linear in the position: with a
//! hundred thousand waiters polling their status that is the whole CPU. Sorted blocks of a
//! bounded size keep a rank at (number of blocks + log of a block), which is what the Redis
//! sorted set gives the other backend.

/// Blocks are split when they grow past twice this size.
const BLOCK: usize = 512;

/// A set of distinct keys in order, with rank queries.
#[derive(Debug)]
pub struct RankedSet<K> {
    /// Non-empty sorted blocks; every key of a block is below every key of the next.
    blocks: Vec<Vec<K>>,
    len: usize,
}

impl<K> Default for RankedSet<K> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Ord> RankedSet<K> {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the first block whose last key is not below `key`.
    fn block_of(&self, key: &K) -> usize {
        self.blocks
            .partition_point(|b| b.last().is_some_and(|last| last < key))
    }

    /// Adds `key`; false if it was there already.
    pub fn insert(&mut self, key: K) -> bool {
        if self.blocks.is_empty() {
            self.blocks.push(vec![key]);
            self.len = 1;
            return true;
        }
        // Past the last key: append to the last block.
        let i = self.block_of(&key).min(self.blocks.len() - 1);
        let block = &mut self.blocks[i];
        match block.binary_search(&key) {
            Ok(_) => false,
            Err(at) => {
                block.insert(at, key);
                if block.len() > 2 * BLOCK {
                    let tail = block.split_off(BLOCK);
                    self.blocks.insert(i + 1, tail);
                }
                self.len += 1;
                true
            }
        }
    }

    /// Removes `key`; false if it was not there.
    pub fn remove(&mut self, key: &K) -> bool {
        let i = self.block_of(key);
        let Some(block) = self.blocks.get_mut(i) else {
            return false;
        };
        match block.binary_search(key) {
            Ok(at) => {
                block.remove(at);
                if block.is_empty() {
                    self.blocks.remove(i);
                }
                self.len -= 1;
                true
            }
            Err(_) => false,
        }
    }

    /// 0-based number of keys below `key`, if `key` is in the set.
    pub fn rank(&self, key: &K) -> Option<usize> {
        let i = self.block_of(key);
        let at = self.blocks.get(i)?.binary_search(key).ok()?;
        Some(self.blocks[..i].iter().map(Vec::len).sum::<usize>() + at)
    }

    /// The smallest key.
    pub fn first(&self) -> Option<&K> {
        self.blocks.first().and_then(|b| b.first())
    }

    /// Removes and returns the smallest key.
    pub fn pop_first(&mut self) -> Option<K> {
        let block = self.blocks.first_mut()?;
        let key = block.remove(0);
        if block.is_empty() {
            self.blocks.remove(0);
        }
        self.len -= 1;
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_match_a_sorted_vector_through_inserts_and_removals() {
        let mut set = RankedSet::default();
        let mut reference: Vec<u64> = Vec::new();
        // A deterministic scramble of 0..5000 (7919 is prime, so this is a permutation).
        for i in 0..5000u64 {
            let key = (i * 7919) % 5000;
            assert!(set.insert(key));
            reference.push(key);
        }
        assert!(!set.insert(42));
        for i in (0..5000u64).step_by(3) {
            assert!(set.remove(&i));
            reference.retain(|k| *k != i);
        }
        assert!(!set.remove(&0));
        reference.sort_unstable();
        assert_eq!(set.len(), reference.len());
        for (rank, key) in reference.iter().enumerate() {
            assert_eq!(set.rank(key), Some(rank));
        }
        assert_eq!(set.rank(&3), None);
        assert_eq!(set.first(), reference.first());
        let mut popped = Vec::new();
        while let Some(key) = set.pop_first() {
            popped.push(key);
        }
        assert_eq!(popped, reference);
        assert!(set.is_empty());
    }
}
