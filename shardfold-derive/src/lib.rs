//! `#[derive(Aggregate)]` for [shardfold](https://docs.rs/shardfold): use it through shardfold's
//! `derive` feature (`use shardfold::Aggregate;`), not directly.
// lints: the workspace's [lints] table (Cargo.toml)

use proc_macro::TokenStream;

mod expand;
mod parse;

/// Makes a struct of named aggregates an aggregate: mergeable field by field, stored in one
/// envelope, and (with `event = Type`) fed one event at a time.
///
/// Generates:
///
/// * `Merge`: `check_merge` on every field, `merge_unchecked` on each; the provided `merge`
///   runs the first, then the second, so a refused merge (for example two `Distinct` fields of
///   different precision: `IncompatibleParams` from the field) leaves `self` unchanged;
/// * `Codec`: type tag `tags::STRUCT` (`0x00F8`); the parameter block records the struct's
///   name and every field's name, type tag and parameters, so decoding a blob written by
///   another version of the struct — a field added, removed, renamed, reordered or of another
///   type — is `Error::IncompatibleParams` naming the field, never garbage. Each field keeps its
///   own parameters (a `Distinct` of precision 12 decodes as precision 12) and a merge with
///   differing ones is refused. Byte layout: `FORMAT.md`, "Structs of aggregates";
/// * with `#[aggregate(event = Type)]`, `Insert<Type>`: every field's value is computed from
///   the event and checked before any field is changed, so a refused value (NaN into a
///   `Quantiles` or a `SumF64`) leaves every field unchanged. `insert` goes through
///   `shardfold::merge::InsertAll`, computing each field's value once.
///
/// Together with `Default` and `Clone` that makes the struct a `shardfold::Aggregate`:
/// storable in a `Series`, checked by `testkit::Laws`. Results are read by field name.
///
/// # Attributes
///
/// | where | attribute | meaning |
/// |---|---|---|
/// | struct | `event = Type` | generate `Insert<Type>`; every field then needs `insert` or `insert_some` |
/// | struct | `name = "…"` | the name stored in each blob (default: the struct's name) |
/// | field | `insert = f` | insert `f(&event)` into the field; `f` is a closure or a path, `Fn(&Type) -> V` with the field `Insert<V>` |
/// | field | `insert_some = f` | `f(&event)` is an `Option<V>`: insert `v` for `Some(v)`, leave the field alone for `None` |
/// | field | `name = "…"` | the name stored for the field (default: the field's name) |
///
/// `insert` and `insert_some` are separate because the return type cannot tell them apart:
/// `Count` counts values of any type, `Option`s included.
///
/// The stored names are the schema: renaming the struct or a field in Rust breaks decoding of
/// blobs already written, unless `name = "…"` keeps the old stored name. Without
/// `event = Type`, write `Insert` by hand with `shardfold::merge::InsertAll`; the codec by hand
/// is `shardfold::codec::nested::Schema`. The struct may be generic (every field type must
/// then be `Merge` and `Codec`).
///
/// # Examples
///
/// ```
/// use shardfold::{Aggregate, Count, Insert, Merge, Quantiles, codec};
///
/// struct Request {
///     latency_ms: f64,
///     is_error: bool,
/// }
///
/// #[derive(Aggregate, Debug, Clone, Default)]
/// #[aggregate(event = Request)]
/// struct Route {
///     #[aggregate(insert = |_: &Request| ())]
///     requests: Count,
///     #[aggregate(insert_some = |r: &Request| r.is_error.then_some(()))]
///     errors: Count,
///     #[aggregate(insert = |r: &Request| r.latency_ms)]
///     latency: Quantiles,
/// }
///
/// let mut a = Route::default();
/// let mut b = Route::default();
/// a.insert(Request { latency_ms: 12.0, is_error: false })?;
/// b.insert(Request { latency_ms: 250.0, is_error: true })?;
/// assert!(b.insert(Request { latency_ms: f64::NAN, is_error: true }).is_err()); // nothing changed
///
/// let mut all: Route = codec::decode(&codec::encode(&a))?;
/// all.merge(&b)?;
/// assert_eq!((all.requests.get(), all.errors.get()), (2, 1));
/// assert_eq!(all.latency.quantile(1.0)?, Some(250.0));
///
/// fn stored<A: Aggregate>(_: &A) {} // the trait, same name
/// stored(&all);
/// # Ok::<(), shardfold::Error>(())
/// ```
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    match parse::Input::parse(input) {
        Ok(input) => expand::expand(&input).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
