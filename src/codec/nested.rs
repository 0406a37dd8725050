//! Aggregates made of aggregates: the one codec of tuples, [`Mean`](crate::Mean),
//! [`Stats`](crate::Stats) and structs (`#[derive(Aggregate)]`, feature `derive`), public so that
//! a composite you write by hand stores its parts the same way.
//!
//! Two levels:
//!
//! * **Components**: [`write_params`] appends a part's type tag (u16 LE) and its parameter block
//!   as a section; [`write_payload`] appends its payload as a section; [`read`] reads both back,
//!   checking the tag ([`Error::WrongType`]); [`read_payload`] reads a part whose parameters are
//!   known (empty for exact types).
//! * **Structs** (type tag [`tags::STRUCT`](super::tags::STRUCT)): a [`Schema`] (struct name and
//!   field names, in order) writes a versioned parameter block describing every field — name,
//!   type tag, parameters — and reads it back, refusing a blob written with another set, order
//!   or type of fields with [`Error::IncompatibleParams`] naming the field. The layout is in
//!   `FORMAT.md` ("Structs of aggregates").
//!
//! # Examples
//!
//! A struct of aggregates by hand: exactly what `#[derive(Aggregate)]` writes.
//!
//! ```
//! use shardfold::codec::{self, Codec, Limits, nested::{self, Schema}, tags};
//! use shardfold::{Count, Distinct, Insert, Result};
//!
//! #[derive(Debug, Default, Clone, PartialEq)]
//! struct Visits {
//!     hits: Count,
//!     users: Distinct,
//! }
//!
//! const SCHEMA: Schema = Schema::new("Visits", &["hits", "users"]);
//!
//! impl Codec for Visits {
//!     const TYPE_TAG: u16 = tags::STRUCT;
//!
//!     fn write_params(&self, out: &mut Vec<u8>) {
//!         SCHEMA.write_params(out).field(&self.hits).field(&self.users);
//!     }
//!
//!     fn write_payload(&self, out: &mut Vec<u8>) {
//!         nested::write_payload(&self.hits, out);
//!         nested::write_payload(&self.users, out);
//!     }
//!
//!     fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
//!         let mut r = SCHEMA.read(params, payload, limits)?;
//!         let value = Visits { hits: r.field()?, users: r.field()? };
//!         r.finish()?;
//!         Ok(value)
//!     }
//! }
//!
//! let mut v = Visits::default();
//! v.hits.insert(())?;
//! v.users.insert(42u64)?;
//! assert_eq!(codec::decode::<Visits>(&codec::encode(&v))?, v);
//! # Ok::<(), shardfold::Error>(())
//! ```

use super::{Codec, Limits, Reader, write_postcard, write_section_with};
use crate::error::{Error, Result};

/// Appends a component's type tag (u16 LE) and its parameter block as a section.
pub fn write_params<A: Codec>(component: &A, out: &mut Vec<u8>) {
    out.extend_from_slice(&A::TYPE_TAG.to_le_bytes());
    write_section_with(out, |o| component.write_params(o));
}

/// Appends a component's payload as a section.
pub fn write_payload<A: Codec>(component: &A, out: &mut Vec<u8>) {
    write_section_with(out, |o| component.write_payload(o));
}

/// Reads a component written with [`write_params`] into `params` and [`write_payload`] into
/// `payload`.
///
/// # Errors
///
/// [`Error::WrongType`] when the tag is not `A`'s, [`Error::Truncated`] when a section is cut
/// short, and whatever `A`'s decoder returns.
pub fn read<A: Codec>(
    params: &mut Reader<'_>,
    payload: &mut Reader<'_>,
    limits: &Limits,
) -> Result<A> {
    let own_params = read_params::<A>(params)?;
    read_payload(own_params, payload, limits)
}

/// Reads what [`write_params`] wrote: checks the tag is `A`'s and returns `A`'s parameter
/// block — for containers whose many parts share one parameter block (windows, group-by keys),
/// each part then read with [`read_payload`].
///
/// # Errors
///
/// [`Error::WrongType`] when the tag is not `A`'s, [`Error::Truncated`] when cut short.
pub fn read_params<'a, A: Codec>(params: &mut Reader<'a>) -> Result<&'a [u8]> {
    let (found, own_params) = read_tagged(params)?;
    if found != A::TYPE_TAG {
        return Err(Error::WrongType {
            expected: A::TYPE_TAG,
            found,
        });
    }
    Ok(own_params)
}

/// Reads a component from the next payload section, given its parameter block (`&[]` for
/// types without parameters).
///
/// # Errors
///
/// [`Error::Truncated`] when the section is cut short, and whatever `A`'s decoder returns.
pub fn read_payload<A: Codec>(
    params: &[u8],
    payload: &mut Reader<'_>,
    limits: &Limits,
) -> Result<A> {
    A::read_parts(params, payload.section("nested aggregate payload")?, limits)
}

fn read_tagged<'a>(params: &mut Reader<'a>) -> Result<(u16, &'a [u8])> {
    let tag = params.u16("nested aggregate tag")?;
    Ok((tag, params.section("nested aggregate params")?))
}

/// The version of the struct parameter block this build writes and reads (its first byte).
pub const STRUCT_FORMAT: u8 = 1;

/// The shape of a struct of aggregates: its name and its fields' names, in declaration order.
/// Written into every blob's parameter block (with each field's type tag and parameters) and
/// checked on decode, so that a blob is only ever read into the struct that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    name: &'static str,
    fields: &'static [&'static str],
}

impl Schema {
    /// A struct called `name` with `fields` in the order they are written and read.
    pub const fn new(name: &'static str, fields: &'static [&'static str]) -> Self {
        Schema { name, fields }
    }

    /// The struct's name as stored.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The fields' names as stored, in order.
    pub fn fields(&self) -> &'static [&'static str] {
        self.fields
    }

    /// Starts the parameter block: appends the format byte, the struct name and the field
    /// count. Then call [`FieldParams::field`] once per field, in order.
    pub fn write_params<'o>(&self, out: &'o mut Vec<u8>) -> FieldParams<'o> {
        out.push(STRUCT_FORMAT);
        write_postcard(self.name, out);
        write_postcard(&(self.fields.len() as u64), out);
        FieldParams {
            out,
            names: self.fields.iter(),
        }
    }

    /// Checks a parameter block against this schema — format, struct name, every field's name
    /// in order, field count — and returns a reader of the fields. Then call
    /// [`FieldReader::field`] once per field, in order, and [`FieldReader::finish`].
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleParams`] when the struct name or a field name differs, or the blob
    /// has fewer or more fields (naming the first field that differs);
    /// [`Error::UnsupportedVersion`] for another struct format; [`Error::Truncated`] and
    /// [`Error::InvalidState`] on malformed bytes.
    pub fn read<'a>(
        &self,
        params: &'a [u8],
        payload: &'a [u8],
        limits: &'a Limits,
    ) -> Result<FieldReader<'a>> {
        let mut p = Reader::new(params);
        let format = p.u8("struct format")?;
        if format != STRUCT_FORMAT {
            return Err(Error::UnsupportedVersion {
                found: format,
                supported: STRUCT_FORMAT,
            });
        }
        let name = read_name(&mut p, "struct name")?;
        if name != self.name.as_bytes() {
            return Err(Error::incompatible("struct name", self.name, lossy(name)));
        }
        let count = varint(&mut p, "struct field count")?;
        self.check_fields(p.clone(), count)?;
        Ok(FieldReader {
            schema: *self,
            next: 0,
            params: p,
            payload: Reader::new(payload),
            limits,
        })
    }

    /// Compares the blob's field names with ours, in order; `p` is at the first field.
    fn check_fields(&self, mut p: Reader<'_>, count: u64) -> Result<()> {
        let ours = self.fields.len();
        for (i, &name) in self.fields.iter().enumerate() {
            if i as u64 == count {
                return Err(Error::incompatible(
                    name,
                    format!("field {} `{name}`", i + 1),
                    format!("no such field: the blob has {count}"),
                ));
            }
            let found = read_name(&mut p, "struct field name")?;
            if found != name.as_bytes() {
                return Err(Error::incompatible(
                    name,
                    format!("field {} `{name}`", i + 1),
                    format!("field {} `{}`", i + 1, lossy(found)),
                ));
            }
            read_tagged(&mut p)?;
        }
        if count > ours as u64 {
            let extra = read_name(&mut p, "struct field name")?;
            return Err(Error::incompatible(
                "struct fields",
                format!("{ours} fields"),
                format!("{count} fields, field {} `{}`", ours + 1, lossy(extra)),
            ));
        }
        Ok(())
    }
}

/// Writes the fields of a struct's parameter block; from [`Schema::write_params`].
#[derive(Debug)]
pub struct FieldParams<'o> {
    out: &'o mut Vec<u8>,
    names: core::slice::Iter<'static, &'static str>,
}

impl FieldParams<'_> {
    /// Appends the next field: its name (from the schema), type tag and parameter block.
    /// Call it once per field of the schema, in order.
    pub fn field<A: Codec>(&mut self, value: &A) -> &mut Self {
        // More fields than the schema names is a bug in the caller: the name is left empty
        // and decoding refuses the blob.
        let name = self.names.next().copied().unwrap_or_default();
        debug_assert!(
            !name.is_empty(),
            "more fields written than the schema lists"
        );
        write_postcard(name, self.out);
        write_params(value, self.out);
        self
    }
}

/// Reads the fields of a struct, in order; from [`Schema::read`].
#[derive(Debug)]
pub struct FieldReader<'a> {
    schema: Schema,
    next: usize,
    params: Reader<'a>,
    payload: Reader<'a>,
    limits: &'a Limits,
}

impl FieldReader<'_> {
    /// Reads the next field.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleParams`] naming the field when its stored type tag is not `A`'s;
    /// [`Error::InvalidState`] when called more often than the schema has fields;
    /// [`Error::Truncated`] when a section is cut short; and whatever `A`'s decoder returns.
    pub fn field<A: Codec>(&mut self) -> Result<A> {
        let Some(&name) = self.schema.fields.get(self.next) else {
            return Err(Error::invalid_state(
                "more fields read than the schema lists",
            ));
        };
        self.next += 1;
        read_name(&mut self.params, "struct field name")?;
        let (found, params) = read_tagged(&mut self.params)?;
        if found != A::TYPE_TAG {
            return Err(Error::incompatible(
                name,
                crate::codec::tags::describe(A::TYPE_TAG),
                crate::codec::tags::describe(found),
            ));
        }
        read_payload(params, &mut self.payload, self.limits)
    }

    /// Checks that every field was read and nothing follows.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when fields are left or bytes trail.
    pub fn finish(self) -> Result<()> {
        if self.next != self.schema.fields.len() {
            return Err(Error::invalid_state(
                "fewer fields read than the schema lists",
            ));
        }
        self.params.finish("struct params")?;
        self.payload.finish("struct payload")
    }
}

/// Reads a varint-length-prefixed name (its bytes; compared, never trusted as UTF-8).
fn read_name<'a>(p: &mut Reader<'a>, context: &'static str) -> Result<&'a [u8]> {
    let len = varint(p, context)?;
    let len = usize::try_from(len).map_err(|_| Error::Truncated { context })?;
    p.take(len, context)
}

/// Reads a postcard varint (u64).
fn varint(p: &mut Reader<'_>, context: &'static str) -> Result<u64> {
    match postcard::take_from_bytes::<u64>(p.rest) {
        Ok((n, rest)) => {
            p.rest = rest;
            Ok(n)
        }
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(Error::Truncated { context }),
        Err(e) => Err(Error::invalid_state(format!("{context}: {e}"))),
    }
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}
