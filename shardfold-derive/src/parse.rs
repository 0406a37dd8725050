//! Reading the derive input and its `#[aggregate(...)]` attributes.

use std::collections::BTreeSet;

use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Error, Expr, Fields, Generics, Ident, LitStr, Result, Type};

/// A struct of aggregates, as the derive sees it.
pub struct Input {
    /// The Rust type.
    pub ident: Ident,
    /// Its generics.
    pub generics: Generics,
    /// The name stored in the parameter block.
    pub name: String,
    /// `event = Type`: the event type to generate `Insert` for.
    pub event: Option<Type>,
    /// The fields, in declaration order.
    pub fields: Vec<Field>,
}

/// One field: an aggregate.
pub struct Field {
    /// The Rust field.
    pub ident: Ident,
    /// Its type.
    pub ty: Type,
    /// The name stored in the parameter block.
    pub name: String,
    /// How an event feeds it.
    pub feed: Option<Feed>,
}

/// `insert = f` or `insert_some = f`.
pub enum Feed {
    /// `f(&event)` is always inserted.
    Always(Expr),
    /// `f(&event)` is an `Option`: `Some(v)` inserts `v`, `None` skips the field.
    Some(Expr),
}

impl Feed {
    /// The expression, whichever the kind.
    pub fn expr(&self) -> &Expr {
        match self {
            Feed::Always(e) | Feed::Some(e) => e,
        }
    }
}

impl Input {
    /// Reads a derive input: a struct with named fields.
    pub fn parse(input: DeriveInput) -> Result<Self> {
        let Data::Struct(data) = &input.data else {
            return Err(Error::new_spanned(
                &input.ident,
                "#[derive(Aggregate)] needs a struct with named fields",
            ));
        };
        let Fields::Named(named) = &data.fields else {
            return Err(Error::new_spanned(
                &data.fields,
                "#[derive(Aggregate)] needs named fields: results are read by field name",
            ));
        };
        let (name, event) = container_attrs(&input)?;
        let fields = named.named.iter().map(field).collect::<Result<Vec<_>>>()?;
        check_fields(&fields, event.is_some())?;
        Ok(Input {
            name: name.unwrap_or_else(|| input.ident.unraw().to_string()),
            ident: input.ident,
            generics: input.generics,
            event,
            fields,
        })
    }
}

/// `#[aggregate(event = Type, name = "…")]` on the struct.
fn container_attrs(input: &DeriveInput) -> Result<(Option<String>, Option<Type>)> {
    let (mut name, mut event) = (None, None);
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("aggregate"))
    {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("event") {
                set(&mut event, meta.value()?.parse()?, &meta.path, "event")
            } else if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                set(&mut name, lit.value(), &meta.path, "name")
            } else {
                Err(meta.error("expected `event = Type` or `name = \"…\"`"))
            }
        })?;
    }
    Ok((name, event))
}

/// A field and its `#[aggregate(insert = …, insert_some = …, name = "…")]`.
fn field(f: &syn::Field) -> Result<Field> {
    let Some(ident) = f.ident.clone() else {
        return Err(Error::new_spanned(f, "expected a named field"));
    };
    let (mut name, mut feed) = (None, None);
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("aggregate")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("insert") {
                let e = Feed::Always(meta.value()?.parse()?);
                set(&mut feed, e, &meta.path, "insert or insert_some")
            } else if meta.path.is_ident("insert_some") {
                let e = Feed::Some(meta.value()?.parse()?);
                set(&mut feed, e, &meta.path, "insert or insert_some")
            } else if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                set(&mut name, lit.value(), &meta.path, "name")
            } else {
                Err(meta.error(
                    "expected `insert = |e: &Event| value`, `insert_some = |e: &Event| option` \
                     or `name = \"…\"`",
                ))
            }
        })?;
    }
    Ok(Field {
        name: name.unwrap_or_else(|| ident.unraw().to_string()),
        ident,
        ty: f.ty.clone(),
        feed,
    })
}

/// Stored names are unique; with `event`, every field says how it is fed, and without, none.
fn check_fields(fields: &[Field], has_event: bool) -> Result<()> {
    let mut seen = BTreeSet::new();
    for f in fields {
        if !seen.insert(f.name.as_str()) {
            return Err(Error::new_spanned(
                &f.ident,
                format!("two fields are stored as `{}`", f.name),
            ));
        }
        match (&f.feed, has_event) {
            (None, true) => {
                return Err(Error::new_spanned(
                    &f.ident,
                    "with #[aggregate(event = …)] every field needs \
                     #[aggregate(insert = |e: &Event| value)] or `insert_some = …`",
                ));
            }
            (Some(feed), false) => {
                return Err(Error::new_spanned(
                    feed.expr(),
                    "`insert` needs #[aggregate(event = Type)] on the struct",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn set<T>(slot: &mut Option<T>, value: T, path: &syn::Path, what: &str) -> Result<()> {
    if slot.replace(value).is_some() {
        return Err(Error::new_spanned(path, format!("{what} given twice")));
    }
    Ok(())
}
