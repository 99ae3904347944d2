//! The arithmetic of a month's earnings, in integer minor units: every split adds up exactly.

/// `gross` split into (the platform's share, what is left) at `share_bps` basis points: what is
/// left is rounded down, so the platform's share takes the fraction and both add up to `gross`.
pub fn cut(gross: i64, share_bps: u32) -> (i64, i64) {
    let kept = (i128::from(gross) * i128::from(10_000 - share_bps.min(10_000)) / 10_000) as i64;
    (gross - kept, kept)
}

/// `total` split pro rata by `weights` (largest remainder): each gets the whole part of its
/// share, then the units left over go one each to the largest fractions, ties to the earlier
/// weight. The parts add up to `total` exactly; with no weight at all, every part is zero.
pub fn pro_rata(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum <= 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(i64, i128)> = weights
        .iter()
        .map(|w| {
            let n = i128::from(total) * i128::from(*w);
            ((n / sum) as i64, n % sum)
        })
        .collect();
    let mut parts: Vec<i64> = exact.iter().map(|(whole, _)| *whole).collect();
    let left = total - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest fraction first; the sort is stable, so ties keep their order.
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1));
    for i in order.into_iter().take(left as usize) {
        parts[i] += 1;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platforms_share_takes_the_fraction_and_both_add_up() {
        assert_eq!(cut(2_997, 3_000), (900, 2_097));
        assert_eq!(cut(5, 3_000), (2, 3));
        assert_eq!(cut(0, 3_000), (0, 0));
        assert_eq!(cut(1_000, 0), (0, 1_000));
        assert_eq!(cut(1_000, 10_000), (1_000, 0));
        assert_eq!(cut(1_000, 20_000), (1_000, 0), "a share above all is all");
    }

    #[test]
    fn pro_rata_parts_add_up_to_the_total_and_leftovers_go_to_the_largest_fractions() {
        assert_eq!(pro_rata(2_098, &[1, 1, 1]), vec![700, 699, 699]);
        assert_eq!(pro_rata(10, &[5_000, 3_500, 1_750]), vec![5, 3, 2]);
        assert_eq!(pro_rata(100, &[0, 3]), vec![0, 100]);
        assert_eq!(pro_rata(100, &[0, 0]), vec![0, 0]);
        assert_eq!(pro_rata(0, &[1, 2]), vec![0, 0]);
        // Large weights (milliseconds of a busy month) do not overflow.
        let big = [i64::MAX / 4, i64::MAX / 4, 7];
        assert_eq!(
            pro_rata(1_000_000_007, &big).iter().sum::<i64>(),
            1_000_000_007
        );
        for total in 0..200 {
            let parts = pro_rata(total, &[3, 7, 11, 13]);
            assert_eq!(parts.iter().sum::<i64>(), total);
        }
    }
}
