//! Comparing t-digests whose centroids depend on grouping.

use shardfold::Quantiles;

/// Exact parts equal, and every quantile of `actual` is a valid quantile of `expected` within
/// the sum of both digests' documented rank-error bounds.
pub fn within_bound(expected: &Quantiles, actual: &Quantiles) -> Result<(), String> {
    let exact = |q: &Quantiles| (q.count(), q.min(), q.max(), q.sum().to_bits());
    if exact(expected) != exact(actual) {
        return Err(format!(
            "exact parts differ: {:?} vs {:?}",
            exact(expected),
            exact(actual)
        ));
    }
    for i in 0..=200 {
        let q = f64::from(i) / 200.0;
        let Some(x) = actual.quantile(q).unwrap() else {
            return Ok(());
        };
        let tol = expected.rank_error_bound(q) + actual.rank_error_bound(q);
        let at_most = expected.cdf(x).unwrap().unwrap(); // fraction ≤ x
        let below = expected.cdf(x.next_down()).unwrap().unwrap(); // fraction < x
        if at_most < q - tol || below > q + tol {
            return Err(format!(
                "q={q}: estimate {x} has rank in [{below}, {at_most}] in the single-stream \
                 digest, outside q ± {tol}"
            ));
        }
    }
    Ok(())
}
