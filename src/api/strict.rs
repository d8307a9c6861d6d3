//! JSON request bodies read as their OpenAPI schemas describe them. serde's derived
//! `Deserialize` also takes a struct written as an array of its fields in order
//! (`[null, "Köln"]` for an address), and an enum's tag as the variant's index
//! (`"type": 0`); the document says object and name, so [`Strict`] refuses both and
//! otherwise behaves as `serde_json::Value` does. (In request bodies, a field `type` is
//! always the tag of an internally tagged enum, whose tag serde reads through its own
//! buffer, not through [`Deserializer::deserialize_identifier`].)

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// A parsed JSON value that deserializes structs from objects only.
pub struct Strict(pub Value);

impl<'de> Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => Err(de::Error::custom(format!(
                "expected an object ({name}), found {}",
                kind(&other)
            ))),
        }
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    /// Field names and enum tags are names: serde would also take a variant's index.
    fn deserialize_identifier<V: de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            other => Err(de::Error::custom(format!(
                "expected a name, found {}",
                kind(&other)
            ))),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map ignored_any
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Fields {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Fields {
        Fields {
            iter: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                if k == "type" && !v.is_string() {
                    return Err(de::Error::custom(format!(
                        "`type` is a name, found {}",
                        kind(&v)
                    )));
                }
                self.value = Some(v);
                seed.deserialize(k.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(Strict(v)),
            None => Err(de::Error::custom("a value without a key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Address {
        street: Option<String>,
        city: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Scope {
        Records { ids: Vec<String> },
        Party { id: String },
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Party {
        name: String,
        #[serde(default)]
        addresses: Vec<Address>,
        rev: Option<u32>,
    }

    fn parse<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, serde_json::Error> {
        T::deserialize(Strict(serde_json::from_str(s)?))
    }

    #[test]
    fn objects_are_read_as_serde_json_reads_them() {
        let p: Party =
            parse(r#"{"name":"Muster","addresses":[{"city":"Köln"}],"rev":3}"#).expect("valid");
        assert_eq!(p.addresses[0].city.as_deref(), Some("Köln"));
        assert_eq!(p.rev, Some(3));
        assert!(parse::<Party>(r#"{"name":"x","addresses":[{"town":"K"}]}"#).is_err());
    }

    #[test]
    fn a_struct_written_as_an_array_is_refused() {
        assert!(serde_json::from_str::<Party>(r#"{"name":"x","addresses":[[null,"K"]]}"#).is_ok());
        let e = parse::<Party>(r#"{"name":"x","addresses":[[null,"K"]]}"#).expect_err("array");
        assert!(e.to_string().contains("expected an object"), "{e}");
        assert!(parse::<Party>(r#"["x", [], null]"#).is_err());
    }

    #[test]
    fn an_enum_tag_is_a_name_not_an_index() {
        let ok: Scope = parse(r#"{"type":"party","id":"p"}"#).expect("by name");
        assert_eq!(ok, Scope::Party { id: "p".into() });
        assert!(parse::<Scope>(r#"{"ids":[],"type":0}"#).is_err());
        assert!(parse::<Scope>(r#"{"type":0,"ids":[]}"#).is_err());
    }
}
