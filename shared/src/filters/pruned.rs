//! The filter document of one event, parsed for a set of filters only: the values their paths
//! reach are kept, everything else is skipped without being built (no allocation), which is most
//! of a telephony body. Lookups of the filters' paths give the same answers as in the whole
//! document (tests: `pruned_and_whole_documents_agree`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Filter;
use crate::events::EventType;

/// The paths wanted below one point of the document.
#[derive(Default)]
struct Trie<'f> {
    children: BTreeMap<&'f str, Trie<'f>>,
    /// A path ends here: keep the whole value.
    whole: bool,
}

impl<'f> Trie<'f> {
    fn insert(&mut self, path: &'f [String]) {
        match path.split_first() {
            None => self.whole = true,
            Some((head, tail)) => self.children.entry(head.as_str()).or_default().insert(tail),
        }
    }
}

/// The filter document of an event (`super::document`) whose body is `body`, holding only what
/// `filters` look at. `Null` when the body is not JSON (then no condition but `ne`/`nin`/
/// `exists: false` holds, as for a missing value).
pub fn document<'f>(
    event_type: EventType,
    body: &str,
    filters: impl IntoIterator<Item = &'f Filter>,
) -> Value {
    let mut root = Trie::default();
    let telephony = matches!(
        event_type,
        EventType::TelephonyCreated | EventType::TelephonyUpdated | EventType::TelephonyDeleted
    );
    {
        let at = if telephony {
            root.children.entry("items").or_default()
        } else {
            &mut root
        };
        for f in filters {
            for c in &f.clauses {
                at.insert(&c.path);
            }
        }
    }
    let mut de = serde_json::Deserializer::from_str(body);
    let Ok(Some(mut doc)) = Pruned(&root).deserialize(&mut de) else {
        return Value::Null;
    };
    if telephony {
        match doc.get_mut("items") {
            Some(items) => items.take(),
            None => doc,
        }
    } else {
        doc
    }
}

struct Pruned<'t, 'f>(&'t Trie<'f>);

impl<'de> DeserializeSeed<'de> for Pruned<'_, '_> {
    /// `None`: nothing wanted is inside.
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        if self.0.whole {
            return Value::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

/// A key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Visitor<'de> for Pruned<'_, '_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    // A scalar where a path wants to go deeper: the path reaches nothing.
    fn visit_bool<E>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            match self.0.children.get(key.as_ref()) {
                Some(child) => {
                    if let Some(v) = map.next_value_seed(Pruned(child))? {
                        out.insert(key.into_owned(), v);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(Value::Object(out)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        // Wanted elements keep their index; the ones before them are `Null` placeholders no
        // wanted path reads.
        let mut out = Vec::new();
        let mut i = 0usize;
        loop {
            let child = self.0.children.get(i.to_string().as_str());
            let got = match child {
                Some(child) => match seq.next_element_seed(Pruned(child))? {
                    None => break,
                    Some(v) => v,
                },
                None => match seq.next_element::<IgnoredAny>()? {
                    None => break,
                    Some(_) => None,
                },
            };
            if let Some(v) = got {
                out.resize(i, Value::Null);
                out.push(v);
            }
            i += 1;
        }
        Ok(Some(Value::Array(out)))
    }
}
