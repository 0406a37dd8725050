//! The generated impls: `Merge`, `Codec` and, with `event = Type`, `Insert<Type>`. They call
//! only public, documented items of shardfold (`codec::nested`, `merge::InsertAll`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Generics, Type, WhereClause};

use crate::parse::{Feed, Input};

/// Everything the derive writes, inside `const _: () = { … };` so its helpers stay private.
pub fn expand(input: &Input) -> TokenStream {
    let names = input.fields.iter().map(|f| &f.name);
    let struct_name = &input.name;
    let merge = merge_impl(input);
    let codec = codec_impl(input);
    let insert = input.event.as_ref().map(|event| insert_impl(input, event));
    quote! {
        const _: () = {
            const __SHARDFOLD_SCHEMA: ::shardfold::codec::nested::Schema =
                ::shardfold::codec::nested::Schema::new(#struct_name, &[#(#names),*]);
            #merge
            #codec
            #insert
        };
    }
}

/// `check_merge` on every field; `merge_unchecked` on each. The provided `merge` runs the
/// first, then the second: a refused merge changes nothing.
fn merge_impl(input: &Input) -> TokenStream {
    let ident = &input.ident;
    let where_clause = bounded(&input.generics, input, quote!(::shardfold::Merge));
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let fields: Vec<_> = input.fields.iter().map(|f| &f.ident).collect();
    quote! {
        impl #impl_generics ::shardfold::Merge for #ident #ty_generics #where_clause {
            fn check_merge(&self, other: &Self) -> ::shardfold::Result<()> {
                #(::shardfold::Merge::check_merge(&self.#fields, &other.#fields)?;)*
                ::core::result::Result::Ok(())
            }

            fn merge_unchecked(&mut self, other: &Self) -> ::shardfold::Result<()> {
                #(::shardfold::Merge::merge_unchecked(&mut self.#fields, &other.#fields)?;)*
                ::core::result::Result::Ok(())
            }
        }
    }
}

/// Tag `STRUCT`; the schema and every field's tag and parameters; one payload section a field.
fn codec_impl(input: &Input) -> TokenStream {
    let ident = &input.ident;
    let where_clause = bounded(&input.generics, input, quote!(::shardfold::codec::Codec));
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let fields: Vec<_> = input.fields.iter().map(|f| &f.ident).collect();
    quote! {
        impl #impl_generics ::shardfold::codec::Codec for #ident #ty_generics #where_clause {
            const TYPE_TAG: u16 = ::shardfold::codec::tags::STRUCT;

            fn write_params(&self, out: &mut ::std::vec::Vec<u8>) {
                __SHARDFOLD_SCHEMA.write_params(out)#(.field(&self.#fields))*;
            }

            fn write_payload(&self, out: &mut ::std::vec::Vec<u8>) {
                #(::shardfold::codec::nested::write_payload(&self.#fields, out);)*
            }

            fn read_parts(
                params: &[u8],
                payload: &[u8],
                limits: &::shardfold::codec::Limits,
            ) -> ::shardfold::Result<Self> {
                #[allow(unused_mut)]
                let mut fields = __SHARDFOLD_SCHEMA.read(params, payload, limits)?;
                let value = Self { #(#fields: fields.field()?,)* };
                fields.finish()?;
                ::core::result::Result::Ok(value)
            }
        }
    }
}

/// `check_insert` computes each field's value and checks it; `insert_unchecked` computes each
/// and inserts it unchecked; `insert` (overriding the provided one, which would compute every
/// value twice) computes each once and folds them through `InsertAll` (all checked before any
/// is inserted).
fn insert_impl(input: &Input, event: &Type) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let checks = input.fields.iter().map(|f| {
        let (field, expr) = (&f.ident, feed_call(f.feed.as_ref(), event));
        match f.feed {
            Some(Feed::Some(_)) => quote! {
                if let ::core::option::Option::Some(__value) = #expr {
                    ::shardfold::Insert::check_insert(&self.#field, &__value)?;
                }
            },
            _ => quote! { ::shardfold::Insert::check_insert(&self.#field, &#expr)?; },
        }
    });
    let unchecked = input.fields.iter().map(|f| {
        let (field, expr) = (&f.ident, feed_call(f.feed.as_ref(), event));
        match f.feed {
            Some(Feed::Some(_)) => quote! {
                if let ::core::option::Option::Some(__value) = #expr {
                    ::shardfold::Insert::insert_unchecked(&mut self.#field, __value)?;
                }
            },
            _ => quote! { ::shardfold::Insert::insert_unchecked(&mut self.#field, #expr)?; },
        }
    });
    let inserts = input.fields.iter().map(|f| {
        let (field, expr) = (&f.ident, feed_call(f.feed.as_ref(), event));
        match f.feed {
            Some(Feed::Some(_)) => quote! { .field_some(&mut self.#field, #expr)? },
            _ => quote! { .field(&mut self.#field, #expr)? },
        }
    });
    quote! {
        fn __shardfold_feed<E, V, F: ::core::ops::FnOnce(&E) -> V>(f: F, event: &E) -> V {
            f(event)
        }

        impl #impl_generics ::shardfold::Insert<#event> for #ident #ty_generics #where_clause {
            fn check_insert(&self, __event: &#event) -> ::shardfold::Result<()> {
                #(#checks)*
                ::core::result::Result::Ok(())
            }

            fn insert_unchecked(&mut self, __owned: #event) -> ::shardfold::Result<()> {
                let __event = &__owned;
                #(#unchecked)*
                ::core::result::Result::Ok(())
            }

            fn insert(&mut self, __owned: #event) -> ::shardfold::Result<()> {
                let __event = &__owned;
                ::shardfold::merge::InsertAll::new()
                    #(#inserts)*
                    .insert()
            }
        }
    }
}

/// `f(&event)` with the closure's argument type fixed to the event type.
fn feed_call(feed: Option<&Feed>, event: &Type) -> TokenStream {
    let Some(feed) = feed else {
        return quote!(());
    };
    let expr = feed.expr();
    quote_spanned! {expr.span()=>
        __shardfold_feed::<#event, _, _>(#expr, __event)
    }
}

/// The where clause, plus `FieldType: bound` for every field when the struct is generic.
fn bounded(generics: &Generics, input: &Input, bound: TokenStream) -> Option<WhereClause> {
    let mut generics = generics.clone();
    if generics.type_params().next().is_some() {
        let clause = generics.make_where_clause();
        for f in &input.fields {
            let ty = &f.ty;
            clause.predicates.push(syn::parse_quote!(#ty: #bound));
        }
    }
    generics.where_clause
}
