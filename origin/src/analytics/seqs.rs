//! The sequence numbers of a view the rollup has counted, kept with the view: whatever the event
//! store gives twice (a retried or replayed beacon) counts once. A player numbers its events
//! 0, 1, 2 … so the set is nearly always one range, with a gap where a beacon was lost. At most
//! [`MAX_RANGES`] ranges are kept: past that the narrowest gap is taken as seen (an event that
//! comes later still and falls in it is not counted), which bounds what one view stores and
//! never stops a view counting.

/// Most ranges one view keeps.
pub const MAX_RANGES: usize = 64;

/// Disjoint, sorted, inclusive ranges of sequence numbers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seqs(Vec<(u32, u32)>);

impl Seqs {
    /// Adds `seq`; whether it was new (and room was left for it).
    pub fn insert(&mut self, seq: u32) -> bool {
        // The first range that ends at or after `seq - 1`: `seq` joins it, the one before it, or
        // goes between.
        let i = self
            .0
            .partition_point(|&(_, to)| to.saturating_add(1) < seq);
        match self.0.get(i).copied() {
            Some((from, to)) if from <= seq && seq <= to => false,
            Some((from, to)) if to.saturating_add(1) == seq => {
                // Extends this range upwards, and joins the next one if it starts right after.
                match self.0.get(i + 1).copied() {
                    Some((next_from, next_to)) if next_from == seq + 1 => {
                        self.0[i] = (from, next_to);
                        self.0.remove(i + 1);
                    }
                    _ => self.0[i] = (from, seq),
                }
                true
            }
            Some((from, to)) if seq.saturating_add(1) == from => {
                self.0[i] = (seq, to);
                true
            }
            _ if self.0.len() >= MAX_RANGES => {
                self.close_narrowest_gap();
                self.insert(seq)
            }
            _ => {
                self.0.insert(i, (seq, seq));
                true
            }
        }
    }

    /// Joins the two neighbouring ranges with the fewest numbers between them.
    fn close_narrowest_gap(&mut self) {
        let Some(i) = (1..self.0.len()).min_by_key(|&i| self.0[i].0 - self.0[i - 1].1) else {
            return;
        };
        self.0[i - 1].1 = self.0[i].1;
        self.0.remove(i);
    }

    /// As stored: `0-41,43,50-52`.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|&(from, to)| {
                if from == to {
                    from.to_string()
                } else {
                    format!("{from}-{to}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads what [`Seqs::encode`] wrote ('' is none).
    pub fn decode(s: &str) -> Result<Self, String> {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (from, to) = part.split_once('-').unwrap_or((part, part));
            let (from, to) = match (from.parse(), to.parse()) {
                (Ok(f), Ok(t)) if f <= t => (f, t),
                _ => return Err(format!("sequence range {part:?}")),
            };
            if ranges
                .last()
                .is_some_and(|&(_, last)| from <= last.saturating_add(1))
            {
                return Err(format!("sequence ranges out of order at {part:?}"));
            }
            ranges.push((from, to));
        }
        if ranges.len() > MAX_RANGES {
            return Err(format!("{} sequence ranges", ranges.len()));
        }
        Ok(Self(ranges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(seqs: &[u32]) -> Seqs {
        let mut s = Seqs::default();
        for &n in seqs {
            assert!(s.insert(n), "{n} is new");
        }
        s
    }

    #[test]
    fn each_sequence_number_counts_once_in_any_order() {
        let mut s = of(&[0, 1, 2, 5, 4, 9, 3]);
        assert_eq!(s.encode(), "0-5,9");
        for n in [0, 3, 5, 9] {
            assert!(!s.insert(n), "{n} again");
        }
        assert!(s.insert(8));
        assert!(s.insert(7));
        assert!(s.insert(6));
        assert_eq!(s.encode(), "0-9");
        assert!(s.insert(u32::MAX));
        assert!(!s.insert(u32::MAX));
        assert_eq!(s.encode(), format!("0-9,{}", u32::MAX));
    }

    #[test]
    fn past_so_many_ranges_the_narrowest_gap_is_taken_as_seen_and_counting_goes_on() {
        let mut s = Seqs::default();
        // Gaps of one, except a wider one (two numbers) between the first two ranges.
        assert!(s.insert(0));
        for k in 1..MAX_RANGES as u32 {
            assert!(s.insert(k * 2 + 1));
        }
        assert_eq!(s.0.len(), MAX_RANGES);
        // A 65th range: the first gap of one (between 3 and 5) closes, and every number after
        // counts, one by one.
        for n in 1000..1010 {
            assert!(s.insert(n), "{n}");
        }
        assert_eq!(s.0.len(), MAX_RANGES);
        assert!(!s.insert(4), "inside the closed gap");
        assert!(s.insert(1), "the wider gap stays open");
        assert!(!s.insert(1005));
        assert_eq!(Seqs::decode(&s.encode()), Ok(s.clone()));
    }

    #[test]
    fn stored_form_reads_back_and_damage_is_an_error() {
        for s in [of(&[]), of(&[7]), of(&[0, 1, 2, 10, 12, 13])] {
            assert_eq!(Seqs::decode(&s.encode()), Ok(s));
        }
        for bad in ["x", "3-1", "1-2,2", "5,1", "1-", "-1", "4294967296"] {
            assert!(Seqs::decode(bad).is_err(), "{bad}");
        }
        let too_many: Vec<String> = (0..=MAX_RANGES).map(|k| (k * 2).to_string()).collect();
        assert!(Seqs::decode(&too_many.join(",")).is_err());
    }
}
