//! A Fenwick (binary indexed) tree of byte weights over access stamps: the order-statistic
//! structure giving "bytes of the distinct keys touched after stamp `s`" in O(log n).
//! Weights are `u64`; updates add wrapping deltas, so a weight can go down without signed types
//! (every prefix sum is a true, non-negative sum once all deltas are applied).

#[derive(Debug, Clone)]
pub struct Fenwick {
    /// 1-based internal array; `tree[0]` unused.
    tree: Vec<u64>,
}

impl Fenwick {
    pub fn new(len: usize) -> Fenwick {
        Fenwick {
            tree: vec![0; len + 1],
        }
    }

    pub fn len(&self) -> usize {
        self.tree.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `delta` (wrapping: pass `0u64.wrapping_sub(x)` to subtract `x`) at `index`.
    pub fn add(&mut self, index: usize, delta: u64) {
        let mut position = index + 1;
        while position < self.tree.len() {
            self.tree[position] = self.tree[position].wrapping_add(delta);
            position += position & position.wrapping_neg();
        }
    }

    /// Sum of the weights at `0..end` (`end` clamped to the length).
    pub fn prefix(&self, end: usize) -> u64 {
        let mut position = end.min(self.len());
        let mut sum = 0u64;
        while position > 0 {
            sum = sum.wrapping_add(self.tree[position]);
            position -= position & position.wrapping_neg();
        }
        sum
    }

    /// Sum of the weights at `start..end`.
    pub fn range(&self, start: usize, end: usize) -> u64 {
        if start >= end {
            return 0;
        }
        self.prefix(end).wrapping_sub(self.prefix(start))
    }

    pub fn clear(&mut self) {
        self.tree.iter_mut().for_each(|slot| *slot = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_sums_match_a_plain_array_after_adds_and_removals() {
        let mut tree = Fenwick::new(37);
        let mut plain = [0u64; 37];
        let mut state = 7u64;
        for step in 0..2000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let index = (state >> 33) as usize % 37;
            if step % 3 == 0 && plain[index] > 0 {
                let removed = plain[index] / 2;
                plain[index] -= removed;
                tree.add(index, 0u64.wrapping_sub(removed));
            } else {
                let added = (state >> 50) % 1000;
                plain[index] += added;
                tree.add(index, added);
            }
            let start = (state >> 20) as usize % 38;
            let end = (state >> 10) as usize % 38;
            let expected: u64 = if start < end {
                plain[start..end].iter().sum()
            } else {
                0
            };
            assert_eq!(tree.range(start, end), expected);
        }
    }
}
