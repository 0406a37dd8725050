//! [`SeqNum`] and [`SeqDedup`]: dedup by per-partition sequence-number high-water marks.

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;
use std::collections::BTreeMap;

use super::Outcome;
use crate::agg::no_params;
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::error::{Error, Result};
use crate::merge::Merge;

/// An unsigned integer of any length, as from a Kinesis sequence number (56 decimal digits) or a
/// Kafka offset. Held as its normalized decimal digits (no leading zeros; `"0"` for zero) and
/// ordered numerically: a shorter number is smaller, equal lengths compare digit by digit.
///
/// ```
/// use shardfold::SeqNum;
/// let a: SeqNum = "49590338271490256608559692538361571095921575989136588898".parse()?;
/// let b: SeqNum = "49590338271490256608559692540925702759324208523137515618".parse()?;
/// assert!(a < b);
/// assert_eq!(SeqNum::parse("007")?, SeqNum::from(7u64));
/// assert!(SeqNum::parse("12a").is_err());
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeqNum(String);

impl SeqNum {
    /// Parses decimal digits (leading zeros allowed and dropped).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] when `digits` is empty or holds anything but ASCII `0`–`9`.
    pub fn parse(digits: &str) -> Result<Self> {
        if digits.is_empty() {
            return Err(Error::InvalidValue {
                reason: "empty sequence number",
            });
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidValue {
                reason: "sequence number with a non-digit",
            });
        }
        let trimmed = digits.trim_start_matches('0');
        Ok(SeqNum(
            if trimmed.is_empty() { "0" } else { trimmed }.to_owned(),
        ))
    }

    /// The normalized decimal digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SeqNum {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SeqNum::parse(s)
    }
}

impl From<u64> for SeqNum {
    fn from(n: u64) -> Self {
        SeqNum(n.to_string())
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for SeqNum {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.as_bytes().cmp(other.0.as_bytes()))
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One high-water mark per partition (Kinesis shard, Kafka partition): a sequence number at
/// or below its partition's mark is a duplicate. Each partition must be folded **in order, by
/// one writer at a time**. See the [module docs](crate::dedup#by-sequence-number) for when to
/// choose it and what it cannot see.
///
/// **Out of order within a batch.** A record below its partition's mark but above the mark the
/// current *batch* started from was preceded, in this batch, by a later record of its
/// partition: [`Outcome::Late`], refused and counted, never folded nor taken for a duplicate.
/// A batch is what was offered since the state was created or decoded (each
/// `store::Metric` fold decodes it afresh) or [`end_batch`](SeqDedup::end_batch)
/// was called: call it between batches when you keep the state in memory.
///
/// ```
/// use shardfold::{Outcome, SeqDedup, SeqNum};
/// let mut d = SeqDedup::default();
/// let p = "shardId-000000000001";
/// assert_eq!(d.advance(p, &SeqNum::from(10)), Outcome::Folded);
/// assert_eq!(d.advance(p, &SeqNum::from(12)), Outcome::Folded);
/// assert_eq!(d.advance(p, &SeqNum::from(11)), Outcome::Late); // out of order in this batch
/// d.end_batch();
/// assert_eq!(d.advance(p, &SeqNum::from(10)), Outcome::Duplicate); // a retried batch
/// assert_eq!(d.advance(p, &SeqNum::from(12)), Outcome::Duplicate);
/// assert_eq!(d.advance("shardId-000000000002", &SeqNum::from(1)), Outcome::Folded);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SeqDedup {
    marks: BTreeMap<String, SeqNum>,
    /// The partitions raised in the current batch, with their marks before it (`None`: none).
    /// Not encoded, not compared: the batch is a property of the process, not of the state.
    batch: BTreeMap<String, Option<SeqNum>>,
}

/// Equal when the marks are.
impl PartialEq for SeqDedup {
    fn eq(&self, other: &Self) -> bool {
        self.marks == other.marks
    }
}

impl Eq for SeqDedup {}

impl SeqDedup {
    /// What [`advance`](SeqDedup::advance) would return, without changing anything.
    pub fn check(&self, partition: &str, seq: &SeqNum) -> Outcome {
        let Some(mark) = self.marks.get(partition).filter(|m| seq <= *m) else {
            return Outcome::Folded;
        };
        match self.batch.get(partition) {
            // above where this batch started, below a record of this batch: out of order
            Some(before) if seq < mark && before.as_ref().is_none_or(|b| seq > b) => Outcome::Late,
            _ => Outcome::Duplicate,
        }
    }

    /// Raises `partition`'s mark to `seq` unless `seq` is at or below it, and says which.
    pub fn advance(&mut self, partition: &str, seq: &SeqNum) -> Outcome {
        let outcome = self.check(partition, seq);
        if outcome == Outcome::Folded {
            let before = self.marks.insert(partition.to_owned(), seq.clone());
            if !self.batch.contains_key(partition) {
                self.batch.insert(partition.to_owned(), before);
            }
        }
        outcome
    }

    /// Ends the current batch: the next records are checked against the marks only (see
    /// the type docs).
    pub fn end_batch(&mut self) {
        self.batch.clear();
    }

    /// The high-water mark of `partition`.
    pub fn mark(&self, partition: &str) -> Option<&SeqNum> {
        self.marks.get(partition)
    }

    /// The partitions with a mark, ascending, with their marks.
    pub fn marks(&self) -> impl Iterator<Item = (&str, &SeqNum)> {
        self.marks.iter().map(|(p, s)| (p.as_str(), s))
    }

    /// Whether no partition has a mark.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }
}

/// Two states that both hold a mark for one partition may both have folded the same events of
/// it: refused. Partition-sharded states merge freely.
impl Merge for SeqDedup {
    fn check_merge(&self, other: &Self) -> Result<()> {
        match other.marks.keys().find(|p| self.marks.contains_key(*p)) {
            Some(p) => Err(Error::OverlappingState {
                reason: format!("both states hold a sequence mark for partition {p:?}"),
            }),
            None => Ok(()),
        }
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.marks
            .extend(other.marks.iter().map(|(p, s)| (p.clone(), s.clone())));
        Ok(())
    }
}

/// No parameters. Payload: count u32 LE, then per partition ascending (by UTF-8 bytes): a
/// section with the partition name (UTF-8) and a section with the mark's normalized digits.
impl Codec for SeqDedup {
    const TYPE_TAG: u16 = tags::DEDUP_SEQ;

    fn write_payload(&self, out: &mut Vec<u8>) {
        let n = u32::try_from(self.marks.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (p, s) in &self.marks {
            write_section_with(out, |o| o.extend_from_slice(p.as_bytes()));
            write_section_with(out, |o| o.extend_from_slice(s.0.as_bytes()));
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        no_params(params)?;
        let mut r = Reader::new(payload);
        let mut d = SeqDedup::default();
        for _ in 0..r.u32("partition count")? {
            let p = core::str::from_utf8(r.section("partition name")?)
                .map_err(|_| Error::invalid_state("partition name is not UTF-8"))?;
            let digits = core::str::from_utf8(r.section("sequence mark")?)
                .map_err(|_| Error::invalid_state("sequence mark is not digits"))?;
            let seq = SeqNum::parse(digits)
                .map_err(|_| Error::invalid_state("sequence mark is not digits"))?;
            if seq.0 != digits
                || d.marks
                    .last_key_value()
                    .is_some_and(|(last, _)| last.as_str() >= p)
            {
                return Err(Error::invalid_state(
                    "sequence marks not normalized or not ascending",
                ));
            }
            d.marks.insert(p.to_owned(), seq);
        }
        r.finish("SeqDedup payload")?;
        Ok(d)
    }
}
