//! The dedup decoders (`IdDedup`, `SeqDedup`, `Deduped` by ID and by sequence): whatever
//! decodes must re-encode to the same bytes, merge with itself, and take new events without
//! panicking. Run: `cargo +nightly fuzz run dedup -- -max_total_time=60`.
#![no_main]

mod common;

use common::{check, raw_and_wrapped};
use libfuzzer_sys::fuzz_target;
use shardfold::codec::tags;
use shardfold::{Deduped, EventId, IdDedup, SeqDedup, SeqNum, Stats};

const FAMILY: &[u16] = &[tags::DEDUP_ID, tags::DEDUP_SEQ, tags::DEDUPED];

fn all(bytes: &[u8]) {
    check::<IdDedup>(bytes);
    check::<SeqDedup>(bytes);
    if let Some(mut d) = check::<Deduped<Stats>>(bytes) {
        // at the far ends of time too (slot indexes near u64::MAX, issue 11 defect 6)
        for t in [0, 1_700_000_000_000, u64::MAX - 1, u64::MAX] {
            let _ = d.insert(EventId::from(t), t, 1.5);
        }
        let _ = shardfold::encode(&d);
    }
    if let Some(mut d) = check::<Deduped<Stats, SeqDedup>>(bytes) {
        let _ = d.insert_seq("p", &SeqNum::from(u64::MAX), 2.0);
        let _ = d.insert_seq("", &SeqNum::from(0u64), 2.0);
        d.end_batch();
        let _ = shardfold::encode(&d);
    }
}

fuzz_target!(|data: &[u8]| raw_and_wrapped(data, FAMILY, all));
