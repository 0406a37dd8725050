//! Quantile and CDF estimates from a flushed centroid list.
//!
//! The digest is read as a piecewise-linear quantile function through *knots*
//! `(position, value)`, where positions are ranks in `[0, n]`:
//!
//! * `(0, min)` and `(n, max)` at the ends (both exact);
//! * a centroid of weight 1 is one known value occupying `[c, c + 1)`, where `c` is the weight
//!   before it: two knots `(c, mean)` and `(c + 1, mean)`, a flat step;
//! * a heavier centroid is one knot at its centre, `(c + weight/2, mean)`.
//!
//! `quantile(q)` reads the value at position `q·n` (so a run of single values is returned
//! exactly, as the sorted array would: element `⌊q·n⌋`), and `cdf(x)` the position at value `x`,
//! divided by `n`.

use super::compress::Centroid;
use crate::agg::tally::Tally;

/// The knots of a digest, in increasing position (and non-decreasing value).
struct Knots<'a> {
    centroids: &'a [Centroid],
    n: u64,
    min: f64,
    max: f64,
}

/// One step: `(start, end, value)` — a flat step for a single value, a point for a centroid.
type Step = (f64, f64, f64);

impl Knots<'_> {
    fn steps(&self) -> impl Iterator<Item = Step> + '_ {
        let mut before = 0u64;
        self.centroids.iter().map(move |c| {
            let start = before as f64;
            before += c.weight;
            if c.weight == 1 {
                (start, start + 1.0, c.mean)
            } else {
                let centre = start + c.weight as f64 / 2.0;
                (centre, centre, c.mean)
            }
        })
    }

    fn quantile(&self, q: f64) -> f64 {
        let n = self.n as f64;
        let p = q * n;
        if p >= n {
            return self.max;
        }
        let mut prev = (0.0, self.min);
        for (start, end, value) in self.steps() {
            if p < start {
                return between(prev, (start, value), p);
            }
            if p < end {
                return value;
            }
            prev = (end, value);
        }
        between(prev, (n, self.max), p)
    }

    fn cdf(&self, x: f64) -> f64 {
        let n = self.n as f64;
        if x < self.min {
            return 0.0;
        }
        if x >= self.max {
            return 1.0;
        }
        let mut prev = (0.0, self.min);
        for (start, end, value) in self.steps() {
            if x < value {
                return position(prev, (start, value), x) / n;
            }
            prev = (end, value);
        }
        position(prev, (n, self.max), x) / n
    }
}

/// The value at position `p` on the segment from knot `a` to knot `b` (`a.0 ≤ p < b.0`).
fn between(a: (f64, f64), b: (f64, f64), p: f64) -> f64 {
    let t = (p - a.0) / (b.0 - a.0);
    // each term is at most the larger magnitude: no overflow near ±f64::MAX
    let v = a.1 * (1.0 - t) + b.1 * t;
    v.max(a.1).min(b.1)
}

/// The position at value `x` on the segment from `a` to `b` (`a.1 ≤ x < b.1`).
fn position(a: (f64, f64), b: (f64, f64), x: f64) -> f64 {
    let mut t = (x - a.1) / (b.1 - a.1);
    if !t.is_finite() {
        // the differences overflowed: halve everything (exact for normal numbers)
        t = (x / 2.0 - a.1 / 2.0) / (b.1 / 2.0 - a.1 / 2.0);
    }
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    a.0 + (b.0 - a.0) * t
}

fn knots<'a>(centroids: &'a [Centroid], t: &Tally) -> Knots<'a> {
    Knots {
        centroids,
        n: t.count,
        min: t.min,
        max: t.max,
    }
}

/// The estimated value at quantile `q ∈ [0, 1]` of a non-empty flushed digest.
pub(crate) fn quantile(c: &[Centroid], t: &Tally, q: f64) -> f64 {
    knots(c, t).quantile(q)
}

/// The estimated fraction of values `≤ x` in a non-empty flushed digest.
pub(crate) fn cdf(c: &[Centroid], t: &Tally, x: f64) -> f64 {
    knots(c, t).cdf(x)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(count: u64, min: f64, max: f64) -> Tally {
        Tally { count, min, max }
    }

    fn singles(xs: &[f64]) -> Vec<Centroid> {
        xs.iter()
            .map(|&mean| Centroid { mean, weight: 1 })
            .collect()
    }

    #[test]
    fn singletons_are_read_exactly() {
        let xs = [1.0, 2.0, 2.0, 5.0, 9.0];
        let c = singles(&xs);
        for (i, &x) in xs.iter().enumerate() {
            let q = (i as f64 + 0.5) / 5.0;
            assert_eq!(quantile(&c, &t(5, 1.0, 9.0), q), x);
        }
        assert_eq!(quantile(&c, &t(5, 1.0, 9.0), 0.0), 1.0);
        assert_eq!(quantile(&c, &t(5, 1.0, 9.0), 1.0), 9.0);
        assert_eq!(cdf(&c, &t(5, 1.0, 9.0), 2.0), 3.0 / 5.0);
        assert_eq!(cdf(&c, &t(5, 1.0, 9.0), 0.5), 0.0);
        assert_eq!(cdf(&c, &t(5, 1.0, 9.0), 9.0), 1.0);
    }

    #[test]
    fn heavy_centroid_interpolates() {
        let c = [
            Centroid {
                mean: 0.0,
                weight: 1,
            },
            Centroid {
                mean: 10.0,
                weight: 10,
            },
            Centroid {
                mean: 20.0,
                weight: 1,
            },
        ];
        // knots: (0,0) (1,0) (6,10) (11,20) (12,20)
        assert_eq!(quantile(&c, &t(12, 0.0, 20.0), 6.0 / 12.0), 10.0);
        assert_eq!(quantile(&c, &t(12, 0.0, 20.0), 3.5 / 12.0), 5.0);
        assert_eq!(cdf(&c, &t(12, 0.0, 20.0), 5.0), 3.5 / 12.0);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let c = singles(&[-f64::MAX, f64::MAX]);
        let v = cdf(&c, &t(2, -f64::MAX, f64::MAX), 0.0);
        assert!((0.0..=1.0).contains(&v));
        let heavy = [Centroid {
            mean: 0.0,
            weight: 4,
        }];
        let q = quantile(&heavy, &t(4, -f64::MAX, f64::MAX), 0.25);
        assert!(q.is_finite());
    }
}
