//! Folds the same partial results ("shards") in many random orders and groupings and shows that
//! every fold gives byte-identical state — while naive floating-point summation of the same
//! values does not.
//!
//! `cargo run --release -p shardfold-examples --example fold_orders`

use std::collections::BTreeSet;
use std::process::ExitCode;

use shardfold::testkit::SplitMix64;
use shardfold::{Count, Insert, Merge, Stats, Sum, codec, hash};

type Metric = (Stats, Sum, Count);

fn main() -> ExitCode {
    let mut rng = SplitMix64::new(20_261_123);
    // 16 function instances each fold 5,000 events of wildly mixed magnitudes
    let shards: Vec<Metric> = (0..16)
        .map(|_| {
            let mut m = Metric::default();
            for _ in 0..5_000 {
                let amount = (rng.unit() - 0.5) * 10f64.powi(rng.below(25) as i32 - 8);
                let cents = (amount * 100.0) as i64;
                m.0.insert(amount).ok();
                m.1.insert(cents).ok();
                m.2.insert(()).ok();
            }
            m
        })
        .collect();

    let folds = 1_000;
    let mut encodings = BTreeSet::new();
    let mut naive_sums = BTreeSet::new();
    for _ in 0..folds {
        let mut order: Vec<&Metric> = shards.iter().collect();
        rng.shuffle(&mut order);
        match fold_random_tree(&order, &mut rng) {
            Ok(total) => {
                encodings.insert(hash::hash_bytes(&codec::encode(&total)));
            }
            Err(e) => {
                eprintln!("merge failed: {e}");
                return ExitCode::FAILURE;
            }
        }
        let naive: f64 = order.iter().map(|m| naive_sum(&m.0)).sum();
        naive_sums.insert(naive.to_bits());
    }

    let mut total = Metric::default();
    for s in &shards {
        if total.merge(s).is_err() {
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{} shards folded in {folds} random orders and groupings",
        shards.len()
    );
    println!(
        "  distinct encoded states: {} ({} bytes each)",
        encodings.len(),
        codec::encode(&total).len()
    );
    println!(
        "  count {}, exact sum {:e}, mean {:e}, min {:e}, max {:e}, integer sum {}",
        total.2.get(),
        total.0.sum(),
        total.0.mean().unwrap_or(f64::NAN),
        total.0.min().unwrap_or(f64::NAN),
        total.0.max().unwrap_or(f64::NAN),
        total.1.get()
    );
    println!(
        "  naive f64 summation of the same shard sums gave {} different answers",
        naive_sums.len()
    );
    if encodings.len() == 1 {
        println!("identical: every order and grouping gave the same bytes");
        ExitCode::SUCCESS
    } else {
        println!("MISMATCH: fold order changed the result");
        ExitCode::FAILURE
    }
}

/// Stand-in for what a hand-rolled aggregator stores: the shard's sum as one rounded f64.
fn naive_sum(stats: &Stats) -> f64 {
    stats.sum()
}

fn fold_random_tree(parts: &[&Metric], rng: &mut SplitMix64) -> shardfold::Result<Metric> {
    if parts.len() == 1 {
        return Ok(parts[0].clone());
    }
    let cut = 1 + rng.below(parts.len() - 1);
    let mut left = fold_random_tree(&parts[..cut], rng)?;
    left.merge(&fold_random_tree(&parts[cut..], rng)?)?;
    Ok(left)
}
