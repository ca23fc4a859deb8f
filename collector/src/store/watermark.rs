//! The ack watermark of one agent epoch: the highest seq below which every record is stored
//! or was dropped by the agent (a gap record's range counts as covered).

use std::collections::BTreeMap;

/// The highest contiguous covered seq, plus the covered ranges above it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watermark {
    seq: u64,
    /// Covered ranges above `seq`: start → inclusive end. May overlap; merged lazily.
    above: BTreeMap<u64, u64>,
}

impl Watermark {
    /// A watermark at `seq` with nothing known above it.
    pub fn at(seq: u64) -> Self {
        Self {
            seq,
            above: BTreeMap::new(),
        }
    }

    /// The highest contiguous covered seq.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Marks `from..=to` as covered and advances the watermark as far as it is contiguous.
    pub fn cover(&mut self, from: u64, to: u64) {
        if to <= self.seq || from > to {
            return;
        }
        let from = from.max(self.seq + 1);
        let end = self.above.entry(from).or_insert(to);
        *end = (*end).max(to);
        while let Some((&start, &end)) = self.above.first_key_value() {
            if start > self.seq.saturating_add(1) {
                break;
            }
            self.above.remove(&start);
            self.seq = self.seq.max(end);
        }
    }

    /// How many ranges are held above the watermark (for tests and memory checks).
    pub fn pending_ranges(&self) -> usize {
        self.above.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_only_when_contiguous() {
        // (ranges covered in order, watermark after each)
        type Case<'a> = (&'a [(u64, u64)], &'a [u64]);
        let cases: &[Case] = &[
            (&[(1, 1), (2, 2), (3, 3)], &[1, 2, 3]),
            (&[(3, 3), (2, 2), (1, 1)], &[0, 0, 3]),
            (&[(1, 3), (7, 9), (4, 6)], &[3, 3, 9]),
            (&[(1, 1), (1, 1), (2, 2)], &[1, 1, 2]),
            // a gap record covering dropped seqs closes the hole
            (&[(1, 2), (6, 6), (3, 5)], &[2, 2, 6]),
            // overlapping ranges
            (&[(5, 10), (3, 7), (1, 2)], &[0, 0, 10]),
            (&[(2, 4), (2, 8), (1, 1)], &[0, 0, 8]),
        ];
        for (ranges, expected) in cases {
            let mut w = Watermark::at(0);
            let seen: Vec<u64> = ranges
                .iter()
                .map(|&(a, b)| {
                    w.cover(a, b);
                    w.seq()
                })
                .collect();
            assert_eq!(&seen, expected, "{ranges:?}");
            assert_eq!(w.pending_ranges(), 0, "{ranges:?}");
        }
    }

    #[test]
    fn ignores_what_is_already_covered() {
        let mut w = Watermark::at(10);
        w.cover(3, 7);
        w.cover(10, 10);
        assert_eq!((w.seq(), w.pending_ranges()), (10, 0));
        w.cover(9, 12);
        assert_eq!(w.seq(), 12);
    }

    proptest::proptest! {
        #[test]
        fn any_order_gives_the_same_watermark(mut seqs in proptest::collection::vec(1u64..40, 0..60)) {
            let mut sorted = Watermark::at(0);
            let mut ordered = seqs.clone();
            ordered.sort_unstable();
            for s in &ordered { sorted.cover(*s, *s); }
            let mut shuffled = Watermark::at(0);
            seqs.reverse();
            for s in &seqs { shuffled.cover(*s, *s); }
            let expected = (1..=40).take_while(|n| ordered.binary_search(n).is_ok()).last().unwrap_or(0);
            proptest::prop_assert_eq!(sorted.seq(), expected);
            proptest::prop_assert_eq!(shuffled.seq(), expected);
        }
    }
}
