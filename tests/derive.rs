//! `#[derive(Aggregate)]`: the law suite on derived structs, a golden file, schema changes as
//! typed errors, all-or-nothing merges and inserts, hostile bytes.

use crate::common;

use std::path::PathBuf;

use common::finite_f64;
use common::quantiles::within_bound;
use proptest::prelude::*;
use shardfold::codec::{self, Envelope, Limits, encode_raw, tags};
use shardfold::testkit::{Laws, SplitMix64};
use shardfold::{
    Aggregate, Count, Distinct, Error, Insert, LogHistogram, Max, Merge, Min, Quantiles, Sum,
    SumF64,
};

// ----- an exact struct -----

#[derive(Debug, Clone)]
struct Order {
    amount: f64,
    items: i64,
    refunded: bool,
}

#[derive(Aggregate, Debug, Clone, Default, PartialEq)]
#[aggregate(event = Order)]
struct Orders {
    #[aggregate(insert = |_: &Order| ())]
    orders: Count,
    #[aggregate(insert = |o: &Order| o.amount)]
    revenue: SumF64,
    #[aggregate(insert = |o: &Order| o.amount)]
    smallest: Min<f64>,
    #[aggregate(insert = |o: &Order| o.items)]
    most_items: Max<i64>,
    #[aggregate(insert_some = |o: &Order| o.refunded.then_some(o.amount))]
    refunds: SumF64,
}

fn order() -> impl Strategy<Value = Order> {
    (finite_f64(), any::<i64>(), any::<bool>()).prop_map(|(amount, items, refunded)| Order {
        amount,
        items,
        refunded,
    })
}

#[test]
fn laws_exact_struct_bit_identical() {
    Laws::<Orders, Order>::new("derived Orders")
        .cases(256)
        .check(order());
}

// ----- a struct with sketches -----

#[derive(Debug, Clone)]
struct Request {
    user: u64,
    latency_ms: f64,
    is_error: bool,
}

#[derive(Aggregate, Debug, Clone, Default)]
#[aggregate(event = Request)]
struct Route {
    #[aggregate(insert = |_: &Request| ())]
    requests: Count,
    #[aggregate(insert_some = |r: &Request| r.is_error.then_some(()))]
    errors: Count,
    #[aggregate(insert = |r: &Request| r.user)]
    users: Distinct,
    #[aggregate(insert = |r: &Request| r.latency_ms)]
    latency: Quantiles,
}

fn request() -> impl Strategy<Value = Request> {
    (0u64..50, (-8.0f64..8.0).prop_map(f64::exp), any::<bool>()).prop_map(
        |(user, latency_ms, is_error)| Request {
            user,
            latency_ms,
            is_error,
        },
    )
}

/// Exact fields bit-identical, the t-digest within its rank-error bound.
fn route_close(expected: &Route, actual: &Route) -> Result<(), String> {
    let exact = |r: &Route| codec::encode(&(r.requests, r.errors, r.users.clone()));
    if exact(expected) != exact(actual) {
        return Err(format!("exact fields differ: {expected:?} vs {actual:?}"));
    }
    within_bound(&expected.latency, &actual.latency)
}

#[test]
fn laws_sketch_struct_within_bound() {
    Laws::<Route, Request>::new("derived Route")
        .cases(256)
        .max_values(400)
        .approx(route_close)
        .check(request());
}

#[test]
fn results_read_by_field_name() {
    let route = route_of(100);
    assert_eq!(route.requests.get(), 100);
    assert!(route.errors.get() > 0 && route.errors.get() < 100);
    assert!(route.users.estimate() > 0.0);
    assert!(route.latency.quantile(0.99).unwrap().is_some());
}

// ----- golden file -----

/// A deterministic route: 100 requests from 30 users.
fn route_of(n: usize) -> Route {
    let mut rng = SplitMix64::new(9);
    let mut route = Route::default();
    for _ in 0..n {
        let r = Request {
            user: rng.below(30) as u64,
            latency_ms: (rng.unit() * 8.0).exp(),
            is_error: rng.below(10) == 0,
        };
        route.insert(r).unwrap();
    }
    route
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn golden() -> Vec<u8> {
    let path = data("derived_route.bin");
    let fresh = codec::encode(&route_of(100));
    if std::env::var_os("SHARDFOLD_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let golden = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with SHARDFOLD_BLESS=1 once)", path.display()));
    assert_eq!(fresh, golden, "today's encoding of the same Route differs");
    golden
}

#[test]
fn golden_file_decodes_and_reencodes_byte_for_byte() {
    let golden = golden();
    let route: Route = codec::decode(&golden).unwrap();
    assert_eq!(codec::encode(&route), golden);
    assert_eq!(route.requests.get(), 100);
    assert_eq!(&golden[..7], b"SHFD\x01\xF8\x00");
}

#[test]
fn golden_params_block_byte_by_byte() {
    // FORMAT.md, "Structs of aggregates": the parameter block of `Route`
    let golden = golden();
    let env = Envelope::parse(&golden, &Limits::default()).unwrap();
    let mut expected = vec![0x01, 5];
    expected.extend_from_slice(b"Route");
    expected.push(4);
    for (name, tag, params) in [
        ("requests", tags::COUNT, &[][..]),
        ("errors", tags::COUNT, &[]),
        ("users", tags::DISTINCT, &[14]),
        ("latency", tags::QUANTILES, &500u32.to_le_bytes()),
    ] {
        expected.push(name.len() as u8);
        expected.extend_from_slice(name.as_bytes());
        expected.extend_from_slice(&tag.to_le_bytes());
        expected.extend_from_slice(&(params.len() as u32).to_le_bytes());
        expected.extend_from_slice(params);
    }
    assert_eq!(env.params, expected);
}

#[test]
fn every_bit_flip_and_truncation_of_the_golden_is_an_error() {
    let golden = golden();
    for bit in 0..golden.len() * 8 {
        let mut bad = golden.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(codec::decode::<Route>(&bad).is_err(), "bit {bit} accepted");
    }
    for len in 0..golden.len() {
        assert!(
            codec::decode::<Route>(&golden[..len]).is_err(),
            "cut at {len}"
        );
    }
}

// ----- schema changes -----

/// Decodes the golden `Route` as `T` and returns the error.
fn decode_golden_as<T: Aggregate + std::fmt::Debug>() -> Error {
    codec::decode::<T>(&golden()).unwrap_err()
}

fn incompatible(e: Error) -> (&'static str, String, String) {
    match e {
        Error::IncompatibleParams { what, left, right } => (what, left, right),
        other => panic!("expected IncompatibleParams, got {other:?}"),
    }
}

mod added {
    use super::*;
    /// `Route` with a field added at the end.
    #[derive(Aggregate, Debug, Clone, Default)]
    pub struct Route {
        pub requests: Count,
        pub errors: Count,
        pub users: Distinct,
        pub latency: Quantiles,
        pub bytes: Sum,
    }
}

mod removed {
    use super::*;
    /// `Route` without `errors`.
    #[derive(Aggregate, Debug, Clone, Default)]
    pub struct Route {
        pub requests: Count,
        pub users: Distinct,
        pub latency: Quantiles,
    }
}

mod removed_last {
    use super::*;
    /// `Route` without `latency`.
    #[derive(Aggregate, Debug, Clone, Default)]
    pub struct Route {
        pub requests: Count,
        pub errors: Count,
        pub users: Distinct,
    }
}

mod renamed {
    use super::*;
    /// `errors` renamed `failures`.
    #[derive(Aggregate, Debug, Clone, Default)]
    pub struct Route {
        pub requests: Count,
        pub failures: Count,
        pub users: Distinct,
        pub latency: Quantiles,
    }

    /// `errors` renamed `failures` in Rust, stored under its old name.
    #[derive(Aggregate, Debug, Clone, Default)]
    #[aggregate(name = "Route")]
    pub struct RouteV2 {
        pub requests: Count,
        #[aggregate(name = "errors")]
        pub failures: Count,
        pub users: Distinct,
        pub latency: Quantiles,
    }
}

mod retyped {
    use super::*;
    /// `latency` a LogHistogram instead of a t-digest.
    #[derive(Aggregate, Debug, Clone, Default)]
    pub struct Route {
        pub requests: Count,
        pub errors: Count,
        pub users: Distinct,
        pub latency: LogHistogram,
    }
}

/// The same fields under another struct name.
#[derive(Aggregate, Debug, Clone, Default)]
#[aggregate(name = "Host")]
struct Host {
    requests: Count,
    errors: Count,
    users: Distinct,
    latency: Quantiles,
}

#[test]
fn added_field_is_incompatible_naming_it() {
    let (what, left, right) = incompatible(decode_golden_as::<added::Route>());
    assert_eq!(what, "bytes");
    assert!(
        left.contains("`bytes`") && right.contains("has 4"),
        "{left} / {right}"
    );
    // and the other way: a blob with a field this build does not know
    let newer = codec::encode(&added::Route::default());
    let (what, _, right) = incompatible(codec::decode::<Route>(&newer).unwrap_err());
    assert_eq!(what, "struct fields");
    assert!(right.contains("`bytes`"), "{right}");
}

#[test]
fn removed_field_is_incompatible_naming_it() {
    let (what, left, right) = incompatible(decode_golden_as::<removed::Route>());
    assert_eq!(what, "users");
    assert!(left.contains("field 2 `users`"), "{left}");
    assert!(right.contains("field 2 `errors`"), "{right}");
    let (what, _, right) = incompatible(decode_golden_as::<removed_last::Route>());
    assert_eq!(what, "struct fields");
    assert!(right.contains("`latency`"), "{right}");
}

#[test]
fn renamed_field_is_incompatible_unless_the_stored_name_is_kept() {
    let (what, _, right) = incompatible(decode_golden_as::<renamed::Route>());
    assert_eq!(what, "failures");
    assert!(right.contains("`errors`"), "{right}");
    let kept: renamed::RouteV2 = codec::decode(&golden()).unwrap();
    assert_eq!(kept.failures, route_of(100).errors);
    assert_eq!(codec::encode(&kept), golden());
}

#[test]
fn changed_field_type_is_incompatible_naming_it() {
    let (what, left, right) = incompatible(decode_golden_as::<retyped::Route>());
    assert_eq!(what, "latency");
    assert_eq!(
        (left.as_str(), right.as_str()),
        ("LogHistogram (0x0012)", "Quantiles (0x0011)")
    );
}

#[test]
fn other_struct_name_and_other_types_are_refused() {
    let (what, left, right) = incompatible(decode_golden_as::<Host>());
    assert_eq!(
        (what, left.as_str(), right.as_str()),
        ("struct name", "Host", "Route")
    );
    assert!(matches!(
        codec::decode::<(Count, Count, Distinct, Quantiles)>(&golden()),
        Err(Error::WrongType {
            expected: tags::TUPLE4,
            found: tags::STRUCT
        })
    ));
    assert!(matches!(
        codec::decode::<Route>(&codec::encode(&Count::new(1))),
        Err(Error::WrongType { .. })
    ));
}

/// `Route` whose `users` default to precision 12.
#[derive(Aggregate, Debug, Clone)]
#[aggregate(name = "Route")]
struct Route12 {
    requests: Count,
    errors: Count,
    users: Distinct,
    latency: Quantiles,
}

impl Default for Route12 {
    fn default() -> Self {
        Route12 {
            requests: Count::default(),
            errors: Count::default(),
            users: Distinct::new(12),
            latency: Quantiles::default(),
        }
    }
}

#[test]
fn changed_field_params_keep_theirs_and_refuse_to_merge() {
    // A blob keeps its fields' parameters (like every blob): decoded as precision 14 ...
    let old: Route12 = codec::decode(&golden()).unwrap();
    assert_eq!(old.users.precision(), 14);
    assert_eq!(codec::encode(&old), golden());
    // ... and merging it with today's precision-12 state is refused by the field.
    let mut fresh = Route12::default();
    fresh.requests.add(7).unwrap();
    let before = codec::encode(&fresh);
    let err = fresh.merge(&old).unwrap_err();
    assert!(matches!(err, Error::IncompatibleParams { .. }), "{err:?}");
    assert_eq!(
        codec::encode(&fresh),
        before,
        "a refused merge changed the state"
    );
    assert_eq!(fresh.check_merge(&old), Err(err));
}

// ----- all or nothing -----

#[test]
fn refused_merge_leaves_every_field_unchanged() {
    let mut a = Orders::default();
    a.insert(Order {
        amount: 2.0,
        items: 3,
        refunded: false,
    })
    .unwrap();
    let mut b = Orders::default();
    b.insert(Order {
        amount: 5.0,
        items: 1,
        refunded: true,
    })
    .unwrap();
    // `orders` (the first field) would overflow: nothing may be merged, not even later fields
    a.orders = Count::new(u64::MAX);
    let before = a.clone();
    assert_eq!(a.merge(&b), Err(Error::Overflow { what: "Count" }));
    assert_eq!(a, before);
    // a failure in a later field leaves the earlier ones alone too
    let mut r = route_of(10);
    let mut other = route_of(5);
    other.users = Distinct::new(10);
    let before = codec::encode(&r);
    assert!(matches!(
        r.merge(&other),
        Err(Error::IncompatibleParams { .. })
    ));
    assert_eq!(codec::encode(&r), before);
}

#[test]
fn refused_insert_leaves_every_field_unchanged() {
    let mut route = route_of(20);
    let before = codec::encode(&route);
    let nan = Request {
        user: 99,
        latency_ms: f64::NAN,
        is_error: true,
    };
    assert!(route.check_insert(&nan).is_err());
    assert!(matches!(route.insert(nan), Err(Error::InvalidValue { .. })));
    assert_eq!(
        codec::encode(&route),
        before,
        "requests, errors or users changed"
    );

    let mut orders = Orders::default();
    orders
        .insert(Order {
            amount: 1.5,
            items: 2,
            refunded: true,
        })
        .unwrap();
    let before = orders.clone();
    for amount in [f64::NAN, f64::INFINITY] {
        let bad = Order {
            amount,
            items: 9,
            refunded: true,
        };
        assert!(orders.insert(bad).is_err());
        assert_eq!(orders, before);
    }
    // `insert_some` with None: the field is not fed, not even checked
    let mut full = Orders {
        refunds: SumF64::default(),
        ..before.clone()
    };
    full.insert(Order {
        amount: 4.0,
        items: 1,
        refunded: false,
    })
    .unwrap();
    assert_eq!(full.refunds, SumF64::default());
    assert_eq!(full.orders.get(), 2);
}

// ----- generic structs, raw identifiers, no event -----

#[derive(Aggregate, Debug, Clone, Default, PartialEq)]
struct Pair<A> {
    r#type: Count,
    inner: A,
}

#[test]
fn generic_struct_without_event_round_trips() {
    let mut p = Pair::<Max<i64>>::default();
    p.r#type.add(3).unwrap();
    p.inner.insert(-4).unwrap();
    let bytes = codec::encode(&p);
    assert_eq!(codec::decode::<Pair<Max<i64>>>(&bytes).unwrap(), p);
    let env = Envelope::parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(&env.params[..12], b"\x01\x04Pair\x02\x04type");
    let mut q = p.clone();
    q.merge(&p).unwrap();
    assert_eq!((q.r#type.get(), q.inner.get()), (6, Some(-4)));
    // a different instantiation is a different field type
    let (what, ..) = incompatible(codec::decode::<Pair<Min<i64>>>(&bytes).unwrap_err());
    assert_eq!(what, "inner");
}

#[derive(Aggregate, Debug, Clone, Default, PartialEq)]
struct Empty {}

#[test]
fn empty_struct_round_trips() {
    let bytes = codec::encode(&Empty {});
    assert_eq!(codec::decode::<Empty>(&bytes).unwrap(), Empty {});
}

// ----- hostile bytes -----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_parts_never_panic(
        params in proptest::collection::vec(any::<u8>(), 0..80),
        payload in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let blob = encode_raw(tags::STRUCT, &params, &payload);
        if let Ok(v) = codec::decode::<Route>(&blob) {
            prop_assert_eq!(codec::encode(&v), blob.clone());
        }
        if let Ok(v) = codec::decode::<Orders>(&blob) {
            prop_assert_eq!(codec::encode(&v), blob);
        }
    }

    #[test]
    fn mutated_golden_params_never_panic(at in 0usize..200, byte in any::<u8>()) {
        let golden = golden();
        let env = Envelope::parse(&golden, &Limits::default()).unwrap();
        let mut params = env.params.to_vec();
        let i = at % params.len();
        params[i] = byte;
        let blob = encode_raw(tags::STRUCT, &params, env.payload);
        if let Ok(v) = codec::decode::<Route>(&blob) {
            prop_assert_eq!(codec::encode(&v), blob);
        }
    }
}

#[test]
fn huge_field_count_or_name_length_is_a_typed_error() {
    // format 1, name "Route", field count 2^60, nothing behind
    let mut params = vec![1, 5];
    params.extend_from_slice(b"Route");
    params.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
    let blob = encode_raw(tags::STRUCT, &params, &[]);
    assert!(matches!(
        codec::decode::<Route>(&blob),
        Err(Error::Truncated { .. })
    ));
    // a name length of 2^60
    let blob = encode_raw(
        tags::STRUCT,
        &[1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
        &[],
    );
    assert!(matches!(
        codec::decode::<Route>(&blob),
        Err(Error::Truncated { .. })
    ));
    // another struct format
    let golden = golden();
    let env = Envelope::parse(&golden, &Limits::default()).unwrap();
    let mut newer = env.params.to_vec();
    newer[0] = 2;
    let blob = encode_raw(tags::STRUCT, &newer, env.payload);
    assert!(matches!(
        codec::decode::<Route>(&blob),
        Err(Error::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    ));
}
