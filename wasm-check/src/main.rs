//! shardfold's core on wasm32: builds a fixed set of partial states ("shards") from a seeded
//! generator, merges each set in two different orders and groupings, checks that both folds
//! encode to the same bytes and that those bytes decode and re-encode unchanged, and prints one
//! line per state:
//!
//! ```text
//! NAME BYTES XXH3
//! ```
//!
//! (`BYTES`: the length of `codec::encode(&state)`, `XXH3`: the crate's stable hash of those
//! bytes, 16 hex digits). With `--hex`, each line ends with the full hex of the bytes too.
//!
//! The same program built for `wasm32-wasip1` (run under Node's WASI) and natively must print
//! identical lines: `.ci/wasm-check.sh` diffs them. Exit code 1 when a check fails here.

use std::process::ExitCode;

use shardfold::{
    Aggregate, Count, Deduped, Distinct, EventId, Insert, Keyed, LogHistogram, Max, Min, Outcome,
    Quantiles, SeqDedup, SeqNum, Stats, Sum, SumF64, TopK, Windowed, Zip, codec, hash,
};

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator, the same stream on
/// every target.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`: the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A value of wildly mixed magnitude and sign: `±u · 10^e`, `e` in `-8..=16`, built with
    /// multiplications only (correctly rounded, so the same on every IEEE 754 target; no libm).
    fn mixed(&mut self) -> f64 {
        let mut scale = 1e-8;
        for _ in 0..self.below(25) {
            scale *= 10.0;
        }
        (self.unit() - 0.5) * scale
    }

    /// A positive latency-like value in `(0, 10^4)` ms, heavy-tailed.
    fn latency(&mut self) -> f64 {
        let u = self.unit();
        1e-3 + u * u * u * u * 1e4
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A per-request struct of aggregates, through `#[derive(Aggregate)]`.
#[derive(shardfold::Aggregate, Debug, Clone, Default)]
#[aggregate(event = Request)]
struct Route {
    #[aggregate(insert = |_: &Request| ())]
    requests: Count,
    #[aggregate(insert_some = |r: &Request| r.error.then_some(()))]
    errors: Count,
    #[aggregate(insert = |r: &Request| r.user)]
    users: Distinct,
    #[aggregate(insert = |r: &Request| r.latency_ms)]
    latency: Quantiles,
    #[aggregate(insert = |r: &Request| r.latency_ms)]
    total_ms: SumF64,
    #[aggregate(insert = |r: &Request| r.latency_ms)]
    fastest: Min<f64>,
    #[aggregate(insert = |r: &Request| r.bytes)]
    largest: Max<i64>,
}

/// The event `Route` folds.
#[derive(Debug, Clone)]
struct Request {
    user: u64,
    latency_ms: f64,
    error: bool,
    bytes: i64,
}

const SHARDS: usize = 12;
const EVENTS_PER_SHARD: u64 = 3_000;

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let hex = std::env::args().skip(1).any(|a| a == "--hex");
    match run(hex) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(hex: bool) -> Result<()> {
    let mut rng = SplitMix64(0x5348_4152_4446_4F4C); // "SHARDFOL"
    let out = |name: &str, bytes: &[u8]| {
        let mut line = format!("{name} {} {:016x}", bytes.len(), hash::hash_bytes(bytes));
        if hex {
            line.push(' ');
            for b in bytes {
                line.push_str(&format!("{b:02x}"));
            }
        }
        if let Err(e) = write_line(&line) {
            eprintln!("wasm-check: writing to stdout: {e}");
            std::process::exit(1);
        }
    };

    // The stable hash itself, on fixed inputs of every length class (0–3, 4–8, 9–16, longer).
    let mut probe = Vec::new();
    for len in [0usize, 3, 7, 16, 17, 240, 1000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        probe.extend_from_slice(&hash::hash_bytes(&data).to_le_bytes());
    }
    probe.extend_from_slice(&EventId::from("order-42").fingerprint().to_le_bytes());
    probe.extend_from_slice(&hash::stable_hash(&12_345u64).to_le_bytes());
    out("hash", &probe);

    // Zip<(Stats, Distinct, Quantiles, LogHistogram)>: amount, user, latency, latency.
    type Metric = Zip<(Stats, Distinct, Quantiles, LogHistogram)>;
    let shards = make_shards(&mut rng, |rng, _| {
        let mut m = Metric::default();
        for _ in 0..EVENTS_PER_SHARD {
            let lat = rng.latency();
            m.insert((rng.mixed(), rng.below(5_000), lat, lat))
                .map_err(err)?;
        }
        Ok(m)
    })?;
    fold_two_ways("zip", Exact::Commutative, &shards, &mut rng, &out)?;

    // Windowed<(Count, Stats)>: 1-minute windows, events over ~10 minutes, redeliveries and
    // late events.
    let shards = make_shards(&mut rng, |rng, s| {
        let mut w = Windowed::<(Count, Stats)>::try_new(60_000, 30_000, 600_000).map_err(err)?;
        let mut folded = 0u64;
        for i in 0..EVENTS_PER_SHARD {
            let id = EventId::from(((s as u64) << 32) | rng.below(EVENTS_PER_SHARD * 2));
            let t = 1_700_000_000_000 + i * 200 + rng.below(120_000);
            if w.insert(id, t, rng.mixed()).map_err(err)? == Outcome::Folded {
                folded += 1;
            }
        }
        ensure(folded > 0, "windowed: a shard folded nothing")?;
        Ok(w)
    })?;
    fold_two_ways("windowed", Exact::Always, &shards, &mut rng, &out)?;

    // Deduped<(Count, Sum)> by event ID: string IDs, some redelivered within a shard.
    let shards = make_shards(&mut rng, |rng, s| {
        let mut d = Deduped::try_new(3_600_000, 60_000, <(Count, Sum)>::default()).map_err(err)?;
        for i in 0..EVENTS_PER_SHARD {
            let id = format!("shard{s}-event{}", rng.below(EVENTS_PER_SHARD));
            let t = 1_700_000_000_000 + i * 1_000;
            d.insert(
                EventId::from(id.as_str()),
                t,
                rng.below(1 << 40) as i64 - (1 << 39),
            )
            .map_err(err)?;
        }
        ensure(d.duplicates() > 0, "deduped: no redelivery was refused")?;
        Ok(d)
    })?;
    fold_two_ways("deduped_id", Exact::Always, &shards, &mut rng, &out)?;

    // Deduped<Stats> by sequence number, one partition per shard plus a shared one.
    let shards = make_shards(&mut rng, |rng, s| {
        let mut d = Deduped::<Stats, SeqDedup>::by_sequence(Stats::default());
        let own = format!("shard-{s}");
        for i in 0..EVENTS_PER_SHARD {
            let seq = SeqNum::from(49_000_000_000_000_000u64 + i * 7 + rng.below(3));
            d.insert_seq(&own, &seq, rng.latency()).map_err(err)?;
            if i % 500 == 499 {
                d.end_batch();
            }
        }
        Ok(d)
    })?;
    fold_two_ways("deduped_seq", Exact::Always, &shards, &mut rng, &out)?;

    // TopK<String> with a skewed word distribution and some weighted inserts.
    let shards = make_shards(&mut rng, |rng, _| {
        let mut t = TopK::<String>::try_new(16).map_err(err)?;
        for _ in 0..EVENTS_PER_SHARD {
            let r = rng.below(1_000);
            let word = format!("w{}", r * r / 5_000); // skewed towards small numbers
            if rng.below(10) == 0 {
                t.insert((word, 1 + rng.below(20))).map_err(err)?;
            } else {
                t.insert(word.as_str()).map_err(err)?;
            }
        }
        Ok(t)
    })?;
    fold_two_ways("topk", Exact::Commutative, &shards, &mut rng, &out)?;

    // Keyed<String, Zip<(Count, Quantiles)>> with more keys than its bound (the overflow bucket).
    let shards = make_shards(&mut rng, |rng, _| {
        let mut k = Keyed::<String, Zip<(Count, Quantiles)>>::with_max_keys(8).map_err(err)?;
        for _ in 0..EVENTS_PER_SHARD {
            let route = format!("/route/{}", rng.below(20));
            k.insert((route, ((), rng.latency()))).map_err(err)?;
        }
        Ok(k)
    })?;
    fold_two_ways("keyed", Exact::Commutative, &shards, &mut rng, &out)?;

    // A derived struct of aggregates.
    let shards = make_shards(&mut rng, |rng, _| {
        let mut r = Route::default();
        for _ in 0..EVENTS_PER_SHARD {
            let req = Request {
                user: rng.below(2_000),
                latency_ms: rng.latency(),
                error: rng.below(50) == 0,
                bytes: rng.below(1 << 20) as i64,
            };
            r.insert(req).map_err(err)?;
        }
        Ok(r)
    })?;
    fold_two_ways("derived", Exact::Commutative, &shards, &mut rng, &out)?;

    Ok(())
}

/// Writes `line` and a newline to stdout, retrying while the pipe is full: under Node's WASI
/// stdout is the process's own descriptor, non-blocking when it is a pipe, so a long `--hex`
/// line into a slow reader fails with `WouldBlock` where `println!` would panic.
fn write_line(line: &str) -> std::io::Result<()> {
    use std::io::{ErrorKind, Write};
    let bytes = format!("{line}\n").into_bytes();
    let mut rest = &bytes[..];
    let mut stdout = std::io::stdout().lock();
    while !rest.is_empty() {
        match stdout.write(rest) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    loop {
        match stdout.flush() {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

fn err(e: shardfold::Error) -> String {
    e.to_string()
}

fn ensure(ok: bool, what: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn make_shards<A>(
    rng: &mut SplitMix64,
    mut shard: impl FnMut(&mut SplitMix64, usize) -> Result<A>,
) -> Result<Vec<A>> {
    (0..SHARDS).map(|s| shard(rng, s)).collect()
}

/// How far a type's merge is byte-exact.
#[derive(Clone, Copy, PartialEq)]
enum Exact {
    /// Commutative and associative down to the byte: any order and grouping.
    Always,
    /// Commutative down to the byte, but the bytes depend on the grouping, within a documented
    /// error bound (the t-digest's centroids, the top-k sketch's surviving counters): only
    /// mirror images of one fold tree agree.
    Commutative,
}

/// Folds `shards` two ways that must give the same bytes, checks that they do and that the
/// bytes decode and re-encode unchanged, and prints them (`out`) as `name`.
///
/// Both kinds: left to right, `((s1 ⊔ s2) ⊔ s3) ⊔ …`, against its mirror image
/// `… ⊔ (s3 ⊔ (s2 ⊔ s1))` (the same grouping, every merge with its sides swapped).
/// [`Exact::Always`]: also a shuffled order as a random binary tree against the left fold.
/// [`Exact::Commutative`]: the random tree cannot match the left fold, so it is printed as
/// `name/tree` (the other platform must produce those same bytes too).
fn fold_two_ways<A: Aggregate>(
    name: &str,
    exact: Exact,
    shards: &[A],
    rng: &mut SplitMix64,
    out: &dyn Fn(&str, &[u8]),
) -> Result<()> {
    // Start from the first shard, not `A::default()`: a windowed or deduped state's parameters
    // must match to merge, and the default's need not.
    let (first, rest) = shards
        .split_first()
        .ok_or_else(|| format!("{name}: no shards"))?;
    let mut left = first.clone();
    for s in rest {
        left.merge(s).map_err(err)?;
    }
    let mut mirror = first.clone();
    for s in rest {
        let mut next = s.clone();
        next.merge(&mirror).map_err(err)?;
        mirror = next;
    }
    let bytes = checked_bytes(name, &left)?;
    let what = "the left fold and its mirror image";
    same(name, what, &bytes, &codec::encode(&mirror))?;

    let mut order: Vec<&A> = shards.iter().collect();
    rng.shuffle(&mut order);
    let tree = checked_bytes(name, &fold_tree(&order, rng)?)?;
    out(name, &bytes);
    match exact {
        Exact::Always => same(
            name,
            "the left fold and a shuffled tree fold",
            &bytes,
            &tree,
        ),
        Exact::Commutative => {
            out(&format!("{name}/tree"), &tree);
            Ok(())
        }
    }
}

/// `codec::encode(state)`, after checking that the bytes decode and re-encode unchanged.
fn checked_bytes<A: Aggregate>(name: &str, state: &A) -> Result<Vec<u8>> {
    let bytes = codec::encode(state);
    let back: A = codec::decode(&bytes).map_err(err)?;
    same(
        name,
        "encode and decode-then-encode",
        &bytes,
        &codec::encode(&back),
    )?;
    Ok(bytes)
}

/// An error naming `name` and `what` unless `a == b`.
fn same(name: &str, what: &str, a: &[u8], b: &[u8]) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(format!(
            "{name}: {what} encode differently ({} vs {} bytes)",
            a.len(),
            b.len()
        ))
    }
}

fn fold_tree<A: Aggregate>(parts: &[&A], rng: &mut SplitMix64) -> Result<A> {
    match parts {
        [] => Err("no shards to fold".to_string()),
        [one] => Ok((*one).clone()),
        _ => {
            let cut = 1 + rng.below(parts.len() as u64 - 1) as usize;
            let mut left = fold_tree(&parts[..cut], rng)?;
            left.merge(&fold_tree(&parts[cut..], rng)?).map_err(err)?;
            Ok(left)
        }
    }
}
