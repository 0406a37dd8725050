//! The `Windowed` decoder: whatever decodes must re-encode to the same bytes, merge with
//! itself, answer queries and take new events (at the far ends of time too) without
//! panicking. Run: `cargo +nightly fuzz run windows -- -max_total_time=60`.
#![no_main]

mod common;

use common::{check, raw_and_wrapped};
use libfuzzer_sys::fuzz_target;
use shardfold::codec::tags;
use shardfold::{Count, Distinct, EventId, Sum, SumF64, Windowed};

const FAMILY: &[u16] = &[tags::WINDOWED];

fn all(bytes: &[u8]) {
    check::<Windowed<(Count, Sum)>>(bytes);
    check::<Windowed<Distinct>>(bytes);
    if let Some(mut w) = check::<Windowed<(Count, SumF64)>>(bytes) {
        let _ = (
            w.range(0, u64::MAX),
            w.hopping(3),
            w.ids_held(),
            w.first_open_start(),
        );
        for t in [0, 1_700_000_000_000, u64::MAX - 1, u64::MAX] {
            let _ = w.insert(EventId::from(t), t, 0.25);
        }
        let again = shardfold::encode(&w);
        let back = shardfold::decode::<Windowed<(Count, SumF64)>>(&again);
        assert!(
            back.is_ok_and(|b| b == w),
            "a state after inserts does not round-trip"
        );
    }
}

fuzz_target!(|data: &[u8]| raw_and_wrapped(data, FAMILY, all));
