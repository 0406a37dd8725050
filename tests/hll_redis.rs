//! `Distinct` with the Redis hash profile against a real `redis-server`
//! (`SHARDFOLD_REDIS_URL`, default `redis://127.0.0.1:6379`; skipped with a notice when absent
//! unless `SHARDFOLD_REQUIRE_SERVICES=1`): the registers equal what `PFADD` builds, an
//! exported `HYLL` string counts (`PFCOUNT`) and merges (`PFMERGE`) as a native key does.
//! Without the server: the merge laws for the profile, hostile `HYLL` strings, golden files.

use proptest::prelude::*;
use shardfold::agg::hll::HashProfile;
use shardfold::codec::{self, Codec, Limits, tags};
use shardfold::testkit::Laws;
use shardfold::{Distinct, Error, Insert, Merge, Result};

/// A Redis-profile `Distinct` whose `Default` is [`Distinct::redis`], for the law suite.
#[derive(Debug, Clone, PartialEq)]
struct RedisDistinct(Distinct);

impl Default for RedisDistinct {
    fn default() -> Self {
        RedisDistinct(Distinct::redis())
    }
}

impl<V: shardfold::agg::hll::DistinctItem> Insert<V> for RedisDistinct {
    fn check_insert(&self, v: &V) -> Result<()> {
        self.0.check_insert(v)
    }
    fn insert_unchecked(&mut self, v: V) -> Result<()> {
        self.0.insert_unchecked(v)
    }
}

impl Merge for RedisDistinct {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.0.check_merge(&other.0)
    }
    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.0.merge_unchecked(&other.0)
    }
}

impl Codec for RedisDistinct {
    const TYPE_TAG: u16 = tags::DISTINCT;
    fn write_params(&self, out: &mut Vec<u8>) {
        self.0.write_params(out)
    }
    fn write_payload(&self, out: &mut Vec<u8>) {
        self.0.write_payload(out)
    }
    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let d = Distinct::read_parts(params, payload, limits)?;
        assert_eq!(d.profile(), HashProfile::Redis);
        Ok(RedisDistinct(d))
    }
}

/// A Redis-profile sketch of `items`.
fn redis_sketch<V: shardfold::agg::hll::DistinctItem>(
    items: impl IntoIterator<Item = V>,
) -> Distinct {
    let mut d = Distinct::redis();
    for v in items {
        d.insert(v).unwrap();
    }
    d
}

// ----- merge laws --------------------------------------------------------------------------

#[test]
fn laws_redis_profile_sparse() {
    Laws::<RedisDistinct, u64>::new("Distinct redis profile")
        .lattice()
        .check(any::<u64>());
}

#[test]
fn laws_redis_profile_strings() {
    Laws::<RedisDistinct, String>::new("Distinct redis profile, strings")
        .lattice()
        .cases(64)
        .check("[a-z]{0,12}");
}

#[test]
fn laws_redis_profile_across_the_dense_threshold() {
    // 4 096 sparse entries at p = 14: cases of up to 9 000 values mix sparse and dense parts
    Laws::<RedisDistinct, u64>::new("Distinct redis profile, dense")
        .lattice()
        .cases(6)
        .max_values(9_000)
        .check(any::<u64>());
}

#[test]
fn profiles_do_not_merge_and_do_not_change_precision() {
    let mut redis = redis_sketch([1u64, 2, 3]);
    let xxh3 = {
        let mut d = Distinct::new(14);
        d.insert(4u64).unwrap();
        d
    };
    let before = redis.clone();
    let err = redis.merge(&xxh3).unwrap_err();
    assert!(
        matches!(err, Error::IncompatibleParams { what, .. } if what.contains("profile")),
        "{err}"
    );
    assert_eq!(redis, before, "a refused merge changes nothing");
    assert!(matches!(
        redis.merge_coarsening(&xxh3),
        Err(Error::IncompatibleParams { .. })
    ));
    assert!(redis.downgrade(12).is_err());
    assert_eq!(redis.downgrade(14).unwrap(), redis);
    assert!(Distinct::with_profile(12, HashProfile::Redis).is_err());
    assert!(matches!(
        xxh3.to_redis(),
        Err(Error::IncompatibleParams { .. })
    ));
    assert!(matches!(
        redis.to_datasketches(),
        Err(Error::IncompatibleParams { .. })
    ));
}

#[test]
fn integers_are_hashed_as_their_decimal_strings() {
    for v in [0i64, 7, -7, 42, i64::MAX, i64::MIN] {
        let as_int = redis_sketch([v]);
        let as_str = redis_sketch([v.to_string()]);
        assert_eq!(as_int, as_str, "{v}");
        assert_eq!(redis_sketch([v as i128]), as_str);
    }
    assert_eq!(redis_sketch([200u8]), redis_sketch(["200"]));
    assert_eq!(redis_sketch([true]), redis_sketch(["1"]));
    assert_ne!(redis_sketch([1u64]), redis_sketch([2u64]));
}

// ----- hostile HYLL strings ----------------------------------------------------------------

/// A `HYLL` header of encoding `enc`.
fn header(enc: u8) -> Vec<u8> {
    let mut h = b"HYLL".to_vec();
    h.push(enc);
    h.extend_from_slice(&[0; 11]);
    h
}

#[test]
fn malformed_hyll_strings_are_typed_errors() {
    let dense = redis_sketch(0..50_000u64).to_redis().unwrap();
    let invalid = |bytes: &[u8], why: &str| match Distinct::from_redis(bytes) {
        Err(Error::InvalidState { .. } | Error::Truncated { .. }) => {}
        other => panic!("{why}: {other:?}"),
    };
    invalid(b"", "empty");
    invalid(b"HYLL", "header cut short");
    invalid(&dense[..15], "header cut short");
    let mut bad_magic = dense.clone();
    bad_magic[0] = b'h';
    invalid(&bad_magic, "bad magic");
    let mut bad_enc = dense.clone();
    bad_enc[4] = 2;
    invalid(&bad_enc, "encoding 2");
    invalid(&dense[..dense.len() - 1], "dense one byte short");
    let mut longer = dense.clone();
    longer.push(0);
    invalid(&longer, "dense one byte long");
    // register 0 = 52: bits 0..6 of the first register byte
    let mut high = header(0);
    high.extend_from_slice(&[0; 12_288]);
    high[16] = 52;
    invalid(&high, "register 52");
    high[16] = 51;
    assert_eq!(Distinct::from_redis(&high).unwrap().registers()[0], 51);
    // sparse: XZERO of 16 384 is the empty HLL; one register short or over is refused
    let mut empty = header(1);
    empty.extend_from_slice(&[0x7F, 0xFF]);
    assert_eq!(Distinct::from_redis(&empty).unwrap().count(), 0);
    let mut short = header(1);
    short.extend_from_slice(&[0x7F, 0xFE]);
    invalid(&short, "sparse 16 383 registers");
    let mut over = empty.clone();
    over.push(0x80); // VAL 1 × 1 after all registers
    invalid(&over, "sparse past the end");
    let mut cut = header(1);
    cut.push(0x7F);
    invalid(&cut, "XZERO cut short");
    // VAL:32 × 4 then XZERO of the rest: registers 0..4 = 32
    let mut val = header(1);
    val.extend_from_slice(&[0xFF, 0x7F, 0xFB]);
    let regs = Distinct::from_redis(&val).unwrap().registers();
    assert_eq!(
        (&regs[..5], regs[5..].iter().all(|&r| r == 0)),
        (&[32, 32, 32, 32, 0][..], true)
    );
}

proptest! {
    #[test]
    fn arbitrary_hyll_bytes_never_panic(enc in 0u8..3, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = header(enc);
        bytes.extend_from_slice(&body);
        if let Ok(d) = Distinct::from_redis(&bytes) {
            let _ = d.count();
            prop_assert_eq!(Distinct::from_redis(&d.to_redis().unwrap()).unwrap(), d);
        }
    }

    #[test]
    fn mutated_exports_never_panic(at in 0usize..12_304, byte in any::<u8>()) {
        let mut bytes = redis_sketch(0..3_000u64).to_redis().unwrap();
        bytes[at] = byte;
        if let Ok(d) = Distinct::from_redis(&bytes) {
            let _ = d.count();
        }
    }
}

// ----- golden files --------------------------------------------------------------------------

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Compares `fresh` with the golden file `name` (written when `SHARDFOLD_BLESS` is set).
fn golden(name: &str, fresh: &[u8]) -> Vec<u8> {
    if std::env::var_os("SHARDFOLD_BLESS").is_some() {
        std::fs::write(data(name), fresh).unwrap();
    }
    let golden = std::fs::read(data(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (run with SHARDFOLD_BLESS=1 once)"));
    assert_eq!(fresh, golden, "{name}: today's bytes differ");
    golden
}

#[test]
fn golden_redis_profile_envelopes_and_hyll() {
    let items = |n: u64| (0..n).map(|i| format!("user-{i}"));
    for (name, d) in [
        ("distinct_redis_sparse.bin", redis_sketch(items(1_000))),
        ("distinct_redis_dense.bin", redis_sketch(items(20_000))),
    ] {
        let g = golden(name, &codec::encode(&d));
        let back: Distinct = codec::decode(&g).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.profile(), HashProfile::Redis);
        assert_eq!(
            g[7..13],
            [2, 0, 0, 0, 14, 1],
            "{name}: params = p, profile 1"
        );
    }
    let hyll = golden(
        "redis_hyll_dense.bin",
        &redis_sketch(items(1_000)).to_redis().unwrap(),
    );
    assert_eq!(
        Distinct::from_redis(&hyll).unwrap().registers(),
        redis_sketch(items(1_000)).registers()
    );
}

#[test]
fn profile_byte_is_checked_on_decode() {
    let d = redis_sketch(["a"]);
    let (mut params, mut payload) = (Vec::new(), Vec::new());
    d.write_params(&mut params);
    d.write_payload(&mut payload);
    let lim = Limits::default();
    assert_eq!(Distinct::read_parts(&params, &payload, &lim).unwrap(), d);
    for bad in [
        vec![14, 0],
        vec![14, 3],
        vec![12, 1],
        vec![14, 1, 0],
        vec![],
    ] {
        assert!(
            matches!(
                Distinct::read_parts(&bad, &payload, &lim),
                Err(Error::InvalidState { .. })
            ),
            "{bad:?}"
        );
    }
}

// ----- against redis-server ------------------------------------------------------------------

#[cfg(feature = "redis")]
mod server {
    use super::*;
    use redis::Connection;

    fn url() -> String {
        std::env::var("SHARDFOLD_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    /// A connection, or `None` with a notice (a panic under `SHARDFOLD_REQUIRE_SERVICES=1`).
    fn connect() -> Option<Connection> {
        let required = std::env::var("SHARDFOLD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        let conn = redis::Client::open(url())
            .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_secs(2)));
        match conn {
            Ok(c) => Some(c),
            Err(e) if required => panic!("redis-server required but unavailable: {e}"),
            Err(e) => {
                eprintln!(
                    "SKIPPED: redis-server unavailable ({e}); set SHARDFOLD_REQUIRE_SERVICES=1 to fail instead"
                );
                None
            }
        }
    }

    /// A key of this test run.
    fn key(name: &str) -> String {
        format!("shardfold-test:hll:{}:{name}", std::process::id())
    }

    fn pfadd(c: &mut Connection, k: &str, items: &[String]) {
        for chunk in items.chunks(1000) {
            let _: i64 = redis::cmd("PFADD").arg(k).arg(chunk).query(c).unwrap();
        }
    }

    fn get(c: &mut Connection, k: &str) -> Vec<u8> {
        redis::cmd("GET").arg(k).query(c).unwrap()
    }

    fn pfcount(c: &mut Connection, k: &str) -> u64 {
        redis::cmd("PFCOUNT").arg(k).query(c).unwrap()
    }

    fn del(c: &mut Connection, keys: &[&str]) {
        let _: i64 = redis::cmd("DEL").arg(keys).query(c).unwrap();
    }

    /// Redis's own MurmurHash64A: one `PFADD` of one element into an empty key sets exactly
    /// one register, at Redis's index with Redis's count; ours must be the same register.
    #[test]
    fn single_element_registers_equal_redis() {
        let Some(mut c) = connect() else { return };
        let k = key("single");
        let mut rng = shardfold::testkit::SplitMix64::new(0x5EED);
        for case in 0..300 {
            let len = rng.below(40);
            let e: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            del(&mut c, &[&k]);
            let _: i64 = redis::cmd("PFADD").arg(&k).arg(&e).query(&mut c).unwrap();
            let theirs = Distinct::from_redis(&get(&mut c, &k)).unwrap().registers();
            let mut ours = Distinct::redis();
            ours.insert_bytes(&e);
            assert_eq!(theirs.iter().filter(|&&r| r > 0).count(), 1, "case {case}");
            assert_eq!(ours.registers(), theirs, "case {case}: {e:?}");
        }
        // and integers as PFADD sends them
        for v in [0i64, -1, 42, 1 << 40, i64::MIN] {
            del(&mut c, &[&k]);
            let _: i64 = redis::cmd("PFADD").arg(&k).arg(v).query(&mut c).unwrap();
            let theirs = Distinct::from_redis(&get(&mut c, &k)).unwrap();
            assert_eq!(theirs.registers(), redis_sketch([v]).registers(), "{v}");
        }
        del(&mut c, &[&k]);
    }

    /// For 10, 1 000 and 100 000 elements: native `PFADD` gives our registers (Redis keeps
    /// the small keys sparse, the large one dense); our export counts as Redis counts; a
    /// `PFMERGE` with a native key of overlapping items counts the union.
    #[test]
    fn pfadd_pfcount_pfmerge_agree_with_shardfold() {
        let Some(mut c) = connect() else { return };
        for n in [10usize, 1_000, 100_000] {
            let items: Vec<String> = (0..n).map(|i| format!("item-{i}")).collect();
            let other: Vec<String> = (n / 2..n + n / 2).map(|i| format!("item-{i}")).collect();
            let ours = redis_sketch(&items);
            let (exported, native, other_key, merged_key) =
                (key("exported"), key("native"), key("other"), key("merged"));

            // native PFADD → GET → import: the same registers
            pfadd(&mut c, &native, &items);
            let raw = get(&mut c, &native);
            assert_eq!(
                raw[4],
                u8::from(n <= 1_000),
                "n={n}: Redis encoding (1 = sparse)"
            );
            assert_eq!(
                Distinct::from_redis(&raw).unwrap().registers(),
                ours.registers(),
                "n={n}"
            );

            // SET our export → PFCOUNT: Redis's estimator (Ertl's, as ours) on the same registers
            let _: () = redis::cmd("SET")
                .arg(&exported)
                .arg(ours.to_redis().unwrap())
                .query(&mut c)
                .unwrap();
            let counted = pfcount(&mut c, &exported);
            assert_eq!(counted, ours.register_estimate().round() as u64, "n={n}");
            assert_eq!(counted, pfcount(&mut c, &native), "n={n}");
            if !ours.is_sparse() {
                assert_eq!(
                    counted,
                    ours.count(),
                    "n={n}: dense, so count() is the same estimate"
                );
            }

            // PFMERGE our export with a native key of overlapping items: the union
            pfadd(&mut c, &other_key, &other);
            let _: () = redis::cmd("PFMERGE")
                .arg(&merged_key)
                .arg(&exported)
                .arg(&other_key)
                .query(&mut c)
                .unwrap();
            let union = pfcount(&mut c, &merged_key);
            let mut both = ours.clone();
            both.merge(&redis_sketch(&other)).unwrap();
            assert_eq!(union, both.register_estimate().round() as u64, "n={n}");
            assert_eq!(
                Distinct::from_redis(&get(&mut c, &merged_key))
                    .unwrap()
                    .registers(),
                both.registers(),
                "n={n}"
            );
            let exact = (n + n / 2) as f64;
            let off = (union as f64 - exact).abs();
            assert!(
                off <= (0.03 * exact).max(2.0),
                "n={n}: PFMERGE counts {union}, union is {exact}"
            );
            assert!(
                (union as usize) < 2 * n - n / 4,
                "n={n}: {union} looks like a sum"
            );
            eprintln!(
                "n={n}: PFCOUNT(export)={counted}, count()={}, union: exact {exact}, PFMERGE {union}, shardfold {}",
                ours.count(),
                both.count()
            );
            del(&mut c, &[&exported, &native, &other_key, &merged_key]);
        }
    }
}
