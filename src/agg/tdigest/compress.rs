//! Centroids, the sorted merge of two centroid lists, and the greedy compression pass.

use core::cmp::Ordering;

use super::scale::Scale;

/// A centroid: `weight` values whose mean is `mean`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Centroid {
    /// The mean of the values in the centroid (finite, never `-0.0`).
    pub mean: f64,
    /// How many values the centroid holds (≥ 1).
    pub weight: u64,
}

impl Centroid {
    /// The total order centroid lists are sorted by: mean (IEEE `totalOrder`), then weight.
    pub(crate) fn total_cmp(&self, other: &Centroid) -> Ordering {
        self.mean
            .total_cmp(&other.mean)
            .then(self.weight.cmp(&other.weight))
    }
}

/// Maps a finite `f64` (not `-0.0`) to a `u64` whose unsigned order is `f64` order.
#[inline]
pub(crate) fn order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Inverse of [`order_key`].
#[inline]
pub(crate) fn from_order_key(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// The [`Centroid::total_cmp`] order as one integer: order key of the mean, then the weight.
#[inline]
fn sort_key(c: &Centroid) -> u128 {
    u128::from(order_key(c.mean)) << 64 | u128::from(c.weight)
}

/// Merges two lists sorted by [`Centroid::total_cmp`] into one sorted list.
///
/// The output depends only on the multiset of inputs, not on which list is `a`: equal sort keys
/// mean bit-identical centroids. The loop is branch-free on the comparison (interleaved inputs
/// would mispredict half the time) and merges from both ends at once, so the two dependency
/// chains (load → compare → advance) overlap.
pub(crate) fn merge_sorted(a: &[Centroid], b: &[Centroid], out: &mut Vec<Centroid>) {
    let n = a.len() + b.len();
    let base = out.len();
    out.resize(
        base + n,
        Centroid {
            mean: 0.0,
            weight: 0,
        },
    );
    let Some(dst) = out.get_mut(base..) else {
        debug_assert!(false, "t-digest: the output was just resized past `base`");
        return;
    };
    let key = |s: &[Centroid], i: usize, empty: u128| s.get(i).map_or(empty, sort_key);
    let (mut i, mut j) = (0usize, 0usize); // front cursors
    let (mut ia, mut jb) = (a.len(), b.len()); // back cursors (exclusive)
    let (front, back) = (n.div_ceil(2), n / 2);
    for k in 0..front {
        // front: the smaller head, `a` on ties; an exhausted side reads as +∞
        let take_b = key(b, j, u128::MAX) < key(a, i, u128::MAX);
        let pick = if take_b { b.get(j) } else { a.get(i) };
        if let (Some(d), Some(c)) = (dst.get_mut(k), pick) {
            *d = *c;
        }
        j += usize::from(take_b);
        i += usize::from(!take_b);
        if k < back {
            // back: the larger tail, `b` on ties; an exhausted side reads as −∞
            let ka = ia.checked_sub(1).map_or(0, |x| key(a, x, 0));
            let kb = jb.checked_sub(1).map_or(0, |x| key(b, x, 0));
            let take_a = ka > kb;
            let pick = if take_a {
                ia.checked_sub(1).and_then(|x| a.get(x))
            } else {
                jb.checked_sub(1).and_then(|x| b.get(x))
            };
            if let (Some(d), Some(c)) = (dst.get_mut(n - 1 - k), pick) {
                *d = *c;
            }
            ia -= usize::from(take_a);
            jb -= usize::from(!take_a);
        }
    }
}

/// Merges sorted centroids with sorted raw values (order keys, weight 1 each).
///
/// A raw value sorts before a centroid with the same mean (its weight, 1, is the smallest), so
/// comparing order keys alone gives the [`Centroid::total_cmp`] order. Like [`merge_sorted`]:
/// branch-free on the comparison, from both ends at once, into a pre-sized output.
pub(crate) fn merge_with_keys(a: &[Centroid], keys: &[u64], out: &mut Vec<Centroid>) {
    let n = a.len() + keys.len();
    let base = out.len();
    let empty = Centroid {
        mean: 0.0,
        weight: 0,
    };
    out.resize(base + n, empty);
    let Some(dst) = out.get_mut(base..) else {
        debug_assert!(false, "t-digest: the output was just resized past `base`");
        return;
    };
    let raw = |k: u64| Centroid {
        mean: from_order_key(k),
        weight: 1,
    };
    let (mut i, mut j) = (0usize, 0usize); // front cursors
    let (mut ia, mut jb) = (a.len(), keys.len()); // back cursors (exclusive)
    let (front, back) = (n.div_ceil(2), n / 2);
    for k in 0..front {
        // front: the smaller head, the raw value on ties. An exhausted side reads as u64::MAX,
        // which is no finite value's order key; both cannot be exhausted here.
        let key = keys.get(j).copied().unwrap_or(u64::MAX);
        let c = a.get(i).copied().unwrap_or(empty);
        let ka = if i < a.len() {
            order_key(c.mean)
        } else {
            u64::MAX
        };
        let take_key = key <= ka;
        if let Some(d) = dst.get_mut(k) {
            *d = if take_key { raw(key) } else { c };
        }
        j += usize::from(take_key);
        i += usize::from(!take_key);
        if k < back {
            // back: the larger tail, the centroid on ties. An exhausted side reads as 0, which
            // is no finite value's order key either.
            let key = jb.checked_sub(1).and_then(|x| keys.get(x)).copied();
            let c = ia.checked_sub(1).and_then(|x| a.get(x)).copied();
            let ka = c.map_or(0, |c| order_key(c.mean));
            let take_c = ka >= key.unwrap_or(0);
            if let Some(d) = dst.get_mut(n - 1 - k) {
                *d = if take_c {
                    c.unwrap_or(empty)
                } else {
                    raw(key.unwrap_or(0))
                };
            }
            ia -= usize::from(take_c);
            jb -= usize::from(!take_c);
        }
    }
}

/// One greedy pass of the merging digest over centroids sorted by mean, holding `n` values.
///
/// Consecutive inputs join the current centroid while its cumulative weight stays within
/// [`Scale::limit`] of where it started; the first input of a centroid is always taken. The
/// output is sorted by [`Centroid::total_cmp`] and each centroid's mean lies between the means
/// of its first and last input.
pub(crate) fn compress(input: &[Centroid], n: u64, compression: u32) -> Vec<Centroid> {
    let scale = Scale::new(n, compression);
    let mut out = Vec::with_capacity(input.len().min(2 * compression as usize + 16));
    let mut start = 0usize; // index of the current centroid's first input
    let mut before = 0u64; // weight before the current centroid
    let mut weight = 0u64;
    let mut limit = 0u64;
    let mut sum = 0.0f64;
    for (i, c) in input.iter().enumerate() {
        if i > start && before + weight + c.weight <= limit {
            weight += c.weight;
            sum += c.weight as f64 * c.mean;
            continue;
        }
        if i > start {
            out.push(close(&input[start..i], weight, sum));
            before += weight;
            start = i;
        }
        weight = c.weight;
        sum = c.weight as f64 * c.mean;
        limit = scale.limit(before);
    }
    if let Some(rest) = input.get(start..).filter(|r| !r.is_empty()) {
        out.push(close(rest, weight, sum));
    }
    sort_ties(&mut out);
    out
}

/// The centroid made of `inputs` (non-empty, sorted) with total `weight` and weighted sum `sum`.
fn close(inputs: &[Centroid], weight: u64, sum: f64) -> Centroid {
    let (first, last) = match (inputs.first(), inputs.last()) {
        (Some(f), Some(l)) => (f.mean, l.mean),
        _ => (0.0, 0.0),
    };
    if inputs.len() == 1 {
        return Centroid {
            mean: first,
            weight,
        };
    }
    let mut mean = sum / weight as f64;
    if !mean.is_finite() {
        // The weighted sum overflowed (values near ±f64::MAX): sum the weighted fractions.
        let w = weight as f64;
        mean = inputs.iter().map(|c| c.weight as f64 / w * c.mean).sum();
    }
    Centroid {
        mean: mean.max(first).min(last) + 0.0,
        weight,
    }
}

/// Centroids with equal means can come out in any weight order; put them in total order.
fn sort_ties(out: &mut [Centroid]) {
    let unsorted = out
        .windows(2)
        .any(|w| w[0].total_cmp(&w[1]) == Ordering::Greater);
    if unsorted {
        // means are already non-decreasing: this only reorders runs of equal means
        out.sort_by(Centroid::total_cmp);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c(mean: f64, weight: u64) -> Centroid {
        Centroid { mean, weight }
    }

    #[test]
    fn order_key_round_trips_and_orders() {
        let xs = [-1e300, -1.0, -1e-310, 0.0, 1e-310, 1.0, 2.0, f64::MAX];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]));
        }
        for x in xs {
            assert_eq!(from_order_key(order_key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn merge_sorted_is_symmetric() {
        let a = [c(1.0, 1), c(2.0, 3), c(2.0, 5), c(4.0, 1)];
        let b = [c(2.0, 4), c(3.0, 1), c(4.0, 1)];
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        merge_sorted(&a, &b, &mut ab);
        merge_sorted(&b, &a, &mut ba);
        assert_eq!(ab, ba);
        assert!(ab.windows(2).all(|w| w[0].total_cmp(&w[1]).is_le()));
    }

    #[test]
    fn merge_sorted_matches_a_sort_with_many_ties() {
        let mut rng = crate::testkit::SplitMix64::new(3);
        for _ in 0..2000 {
            let list = |rng: &mut crate::testkit::SplitMix64| {
                let len = rng.below(8);
                let mut v: Vec<Centroid> = (0..len)
                    .map(|_| c(rng.below(4) as f64, 1 + rng.below(3) as u64))
                    .collect();
                v.sort_by(Centroid::total_cmp);
                v
            };
            let (a, b) = (list(&mut rng), list(&mut rng));
            let mut want: Vec<Centroid> = a.iter().chain(&b).copied().collect();
            want.sort_by(Centroid::total_cmp);
            let (mut ab, mut ba) = (Vec::new(), Vec::new());
            merge_sorted(&a, &b, &mut ab);
            merge_sorted(&b, &a, &mut ba);
            assert_eq!(ab, want);
            assert_eq!(ba, want);
        }
    }

    #[test]
    fn merge_with_keys_matches_merge_sorted() {
        let a = [c(1.0, 1), c(2.0, 3), c(5.0, 1)];
        let keys: Vec<u64> = [0.5, 1.0, 2.0, 2.0, 6.0].map(order_key).to_vec();
        let as_centroids: Vec<Centroid> = keys.iter().map(|&k| c(from_order_key(k), 1)).collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        merge_with_keys(&a, &keys, &mut x);
        merge_sorted(&a, &as_centroids, &mut y);
        assert_eq!(x, y);
    }

    #[test]
    fn merge_with_keys_matches_a_sort() {
        let mut rng = crate::testkit::SplitMix64::new(4);
        for _ in 0..2000 {
            let mut a: Vec<Centroid> = (0..rng.below(8))
                .map(|_| c(rng.below(5) as f64 - 2.0 + 0.0, 1 + rng.below(3) as u64))
                .collect();
            a.sort_by(Centroid::total_cmp);
            let mut keys: Vec<u64> = (0..rng.below(8))
                .map(|_| order_key(rng.below(5) as f64 - 2.0 + 0.0))
                .collect();
            keys.sort_unstable();
            let mut want: Vec<Centroid> = a.clone();
            want.extend(keys.iter().map(|&k| c(from_order_key(k), 1)));
            want.sort_by(Centroid::total_cmp);
            let mut got = vec![c(9.0, 9)];
            merge_with_keys(&a, &keys, &mut got);
            assert_eq!(got.first(), Some(&c(9.0, 9)));
            assert_eq!(got.get(1..), Some(&want[..]));
        }
    }

    #[test]
    fn compress_keeps_weight_order_and_extremes_alone() {
        let input: Vec<Centroid> = (0..10_000).map(|i| c(f64::from(i), 1)).collect();
        let out = compress(&input, 10_000, 100);
        assert_eq!(out.iter().map(|c| c.weight).sum::<u64>(), 10_000);
        assert!(out.windows(2).all(|w| w[0].mean < w[1].mean));
        assert_eq!(out.first(), Some(&c(0.0, 1)));
        assert_eq!(out.last(), Some(&c(9999.0, 1)));
        assert!(out.len() as u64 <= super::super::scale::max_centroids(10_000, 100));
        // idempotent: a compressed list compresses to itself
        assert_eq!(compress(&out, 10_000, 100), out);
    }

    #[test]
    fn compress_survives_values_near_f64_max() {
        let input = vec![c(f64::MAX, 1000), c(f64::MAX, 1000), c(f64::MAX, 1000)];
        let out = compress(&input, 3000, 10);
        assert!(out.iter().all(|c| c.mean == f64::MAX));
    }
}
