//! Pattern validation: everything Amazon EventBridge refuses is refused here with the JSON path and a hint;
//! busbar's extensions are accepted unless `strict_eventbridge` is set.

use serde_json::{Map, Value};

use super::{
    AnythingBut, Child, Cond, Literal, MAX_OR_EXPANSION, Node, Pattern, PatternOptions, Range,
};
use crate::cidr::Cidr;
use crate::error::{JsonPath, PatternError};
use crate::iregexp::IRegexp;
use crate::number::Num;
use crate::wildcard::Wildcard;

/// EventBridge's `numeric` operands lie within ±5.0e9; busbar accepts any finite number as an extension
/// (epoch milliseconds, byte counts).
pub(crate) const EVENTBRIDGE_NUMERIC_LIMIT: f64 = 5.0e9;

const OPERATORS: &str = "prefix, suffix, equals-ignore-case, anything-but, numeric, exists, cidr, wildcard (extensions: regex, $and)";

struct Ctx<'a> {
    opts: &'a PatternOptions,
}

type Result<T> = std::result::Result<T, PatternError>;

pub(super) fn parse(pattern: &Value, opts: &PatternOptions) -> Result<Pattern> {
    let root = JsonPath::default();
    let Value::Object(map) = pattern else {
        return Err(PatternError::new(
            &root,
            format!("a pattern must be a JSON object, found {}", kind(pattern)),
        ));
    };
    let node = Ctx { opts }.node(map, &root)?;
    let size = node.expansion_size();
    if size > MAX_OR_EXPANSION {
        return Err(PatternError::new(
            &root,
            format!(
                "pattern is too complex: its $or branches combine into {size} alternatives, at most {MAX_OR_EXPANSION} are allowed"
            ),
        ));
    }
    Ok(Pattern { root: node })
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

impl Ctx<'_> {
    fn extension(&self, path: &JsonPath, what: &str) -> Result<()> {
        if self.opts.strict_eventbridge {
            Err(PatternError::new(
                path,
                format!("{what} is a busbar extension, rejected in strict EventBridge mode"),
            ))
        } else {
            Ok(())
        }
    }

    fn node(&self, map: &Map<String, Value>, path: &JsonPath) -> Result<Node> {
        if map.is_empty() {
            return Err(PatternError::new(
                path,
                "empty object: name at least one field to match",
            ));
        }
        let mut node = Node {
            fields: Vec::new(),
            ors: Vec::new(),
        };
        for (key, value) in map {
            let p = path.key(key);
            if key == "$or" {
                node.ors.push(self.or(value, &p)?);
                continue;
            }
            let child = match value {
                Value::Object(inner) => Child::Node(self.node(inner, &p)?),
                Value::Array(list) => Child::Leaf(self.value_list(list, &p)?),
                other => {
                    return Err(PatternError::new(
                        &p,
                        format!(
                            "a field must hold an array of values to match or an object, found {}; write [{other}]",
                            kind(other)
                        ),
                    ));
                }
            };
            node.fields.push((key.clone(), child));
        }
        Ok(node)
    }

    fn or(&self, value: &Value, path: &JsonPath) -> Result<Vec<Node>> {
        let Value::Array(branches) = value else {
            return Err(PatternError::new(
                path,
                format!(
                    "$or must be an array of pattern objects, found {}",
                    kind(value)
                ),
            ));
        };
        if branches.len() < 2 {
            return Err(PatternError::new(
                path,
                "$or needs at least two alternatives",
            ));
        }
        branches
            .iter()
            .enumerate()
            .map(|(i, b)| match b {
                Value::Object(m) => self.node(m, &path.index(i)),
                other => Err(PatternError::new(
                    &path.index(i),
                    format!("a $or alternative must be an object, found {}", kind(other)),
                )),
            })
            .collect()
    }

    fn value_list(&self, list: &[Value], path: &JsonPath) -> Result<Vec<Cond>> {
        if list.is_empty() {
            return Err(PatternError::new(
                path,
                "empty value list: give at least one value or operator",
            ));
        }
        list.iter()
            .enumerate()
            .map(|(i, v)| self.value(v, &path.index(i)))
            .collect()
    }

    fn value(&self, v: &Value, path: &JsonPath) -> Result<Cond> {
        Ok(match v {
            Value::String(s) => Cond::Exact(Literal::Str(s.clone())),
            Value::Number(n) => Cond::Exact(Literal::Num(Num::from_json(n))),
            Value::Bool(b) => Cond::Exact(Literal::Bool(*b)),
            Value::Null => Cond::Exact(Literal::Null),
            Value::Object(m) => self.operator(m, path)?,
            Value::Array(all) => {
                if self.opts.strict_eventbridge {
                    return Err(PatternError::new(
                        path,
                        "nested array inside a value list (a list of operator objects meaning 'all must hold' is a busbar extension, rejected in strict EventBridge mode)",
                    ));
                }
                self.all(all, path)?
            }
        })
    }

    /// Extension: a list of operator objects that must all hold for one value.
    fn all(&self, list: &[Value], path: &JsonPath) -> Result<Cond> {
        if list.is_empty() {
            return Err(PatternError::new(
                path,
                "empty list of conditions: give at least one operator object",
            ));
        }
        let mut conds = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            let p = path.index(i);
            let Value::Object(m) = v else {
                return Err(PatternError::new(
                    &p,
                    format!(
                        "a nested list (all conditions must hold) may only hold operator objects, found {}; EventBridge rejects nested arrays",
                        kind(v)
                    ),
                ));
            };
            let c = self.operator(m, &p)?;
            if matches!(c, Cond::Exists(_)) {
                return Err(PatternError::new(
                    &p,
                    "exists cannot be combined with other conditions on one value",
                ));
            }
            conds.push(c);
        }
        Ok(Cond::All(conds))
    }

    fn operator(&self, m: &Map<String, Value>, path: &JsonPath) -> Result<Cond> {
        let mut entries = m.iter();
        let (Some((op, arg)), None) = (entries.next(), entries.next()) else {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            return Err(PatternError::new(
                path,
                format!(
                    "an operator object must have exactly one key, found {keys:?}; operators: {OPERATORS}; to require several conditions on one field use $and (busbar extension)"
                ),
            ));
        };
        let p = path.key(op);
        match op.as_str() {
            "prefix" => self
                .affix(arg, &p, "prefix")
                .map(|(text, ignore_case)| Cond::Prefix { text, ignore_case }),
            "suffix" => self
                .affix(arg, &p, "suffix")
                .map(|(text, ignore_case)| Cond::Suffix { text, ignore_case }),
            "equals-ignore-case" => Ok(Cond::EqualsIgnoreCase(
                string(arg, &p, "equals-ignore-case")?.to_lowercase(),
            )),
            "anything-but" => self.anything_but(arg, &p).map(Cond::AnythingBut),
            "numeric" => self.numeric(arg, &p).map(Cond::Numeric),
            "exists" => match arg {
                Value::Bool(b) => Ok(Cond::Exists(*b)),
                other => Err(PatternError::new(
                    &p,
                    format!("exists takes true or false, found {}", kind(other)),
                )),
            },
            "cidr" => Cidr::parse(string(arg, &p, "cidr")?)
                .map(Cond::Cidr)
                .map_err(|e| PatternError::new(&p, e)),
            "wildcard" => Wildcard::parse(string(arg, &p, "wildcard")?)
                .map(Cond::Wildcard)
                .map_err(|e| PatternError::new(&p, e)),
            "regex" => {
                self.extension(&p, "regex")?;
                IRegexp::parse(string(arg, &p, "regex")?)
                    .map(Cond::Regex)
                    .map_err(|e| PatternError::new(&p, e))
            }
            "$and" => {
                self.extension(&p, "$and")?;
                match arg {
                    Value::Array(list) => self.all(list, &p),
                    other => Err(PatternError::new(
                        &p,
                        format!(
                            "$and takes an array of operator objects, found {}",
                            kind(other)
                        ),
                    )),
                }
            }
            other => Err(PatternError::new(
                &p,
                format!("unknown operator {other:?}; operators: {OPERATORS}"),
            )),
        }
    }

    /// `"prefix": "x"` or `"prefix": {"equals-ignore-case": "x"}`.
    fn affix(&self, arg: &Value, path: &JsonPath, op: &str) -> Result<(String, bool)> {
        match arg {
            Value::String(s) => Ok((s.clone(), false)),
            Value::Object(m) if m.len() == 1 && m.contains_key("equals-ignore-case") => {
                let p = path.key("equals-ignore-case");
                Ok((
                    string(&m["equals-ignore-case"], &p, "equals-ignore-case")?.to_lowercase(),
                    true,
                ))
            }
            other => Err(PatternError::new(
                path,
                format!(
                    "{op} takes a string or {{\"equals-ignore-case\": string}}, found {}",
                    kind(other)
                ),
            )),
        }
    }

    fn anything_but(&self, arg: &Value, path: &JsonPath) -> Result<AnythingBut> {
        match arg {
            Value::String(s) => Ok(AnythingBut::Values {
                strs: vec![s.clone()],
                nums: vec![],
            }),
            Value::Number(n) => Ok(AnythingBut::Values {
                strs: vec![],
                nums: vec![Num::from_json(n)],
            }),
            Value::Array(list) => {
                if list.is_empty() {
                    return Err(PatternError::new(
                        path,
                        "anything-but list is empty: give at least one value",
                    ));
                }
                if list.iter().all(Value::is_string) {
                    let strs = list
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    Ok(AnythingBut::Values { strs, nums: vec![] })
                } else if list.iter().all(Value::is_number) {
                    let nums = list
                        .iter()
                        .filter_map(|v| v.as_number().map(Num::from_json))
                        .collect();
                    Ok(AnythingBut::Values { strs: vec![], nums })
                } else {
                    Err(PatternError::new(
                        path,
                        "anything-but list must hold only strings or only numbers",
                    ))
                }
            }
            Value::Object(m) if m.len() == 1 => {
                let (op, v) = m.iter().next().expect("one entry");
                let p = path.key(op);
                let texts = strings(v, &p, op)?;
                match op.as_str() {
                    "prefix" | "suffix" => {
                        if texts.iter().any(String::is_empty) {
                            return Err(PatternError::new(
                                &p,
                                format!("anything-but {op} cannot be empty"),
                            ));
                        }
                        Ok(if op == "prefix" {
                            AnythingBut::Prefix(texts)
                        } else {
                            AnythingBut::Suffix(texts)
                        })
                    }
                    "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(
                        texts.iter().map(|t| t.to_lowercase()).collect(),
                    )),
                    "wildcard" => texts
                        .iter()
                        .map(|t| Wildcard::parse(t).map_err(|e| PatternError::new(&p, e)))
                        .collect::<Result<_>>()
                        .map(AnythingBut::Wildcard),
                    other => Err(PatternError::new(
                        &p,
                        format!(
                            "anything-but takes prefix, suffix, equals-ignore-case or wildcard, not {other:?}"
                        ),
                    )),
                }
            }
            other => Err(PatternError::new(
                path,
                format!(
                    "anything-but takes a string, a number, a list of strings or numbers, or an object with prefix, suffix, equals-ignore-case or wildcard; found {}",
                    kind(other)
                ),
            )),
        }
    }

    fn numeric(&self, arg: &Value, path: &JsonPath) -> Result<Range> {
        let Value::Array(items) = arg else {
            return Err(PatternError::new(
                path,
                format!(
                    "numeric takes an array like [\">\", 0, \"<=\", 5], found {}",
                    kind(arg)
                ),
            ));
        };
        if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
            return Err(PatternError::new(
                path,
                "numeric takes one or two (operator, number) pairs, like [\"=\", 5] or [\">\", 0, \"<=\", 5]",
            ));
        }
        let mut range = Range {
            low: None,
            high: None,
        };
        for (pair, chunk) in items.chunks(2).enumerate() {
            let op_path = path.index(pair * 2);
            let Some(op) = chunk[0].as_str() else {
                return Err(PatternError::new(
                    &op_path,
                    format!(
                        "expected an operator (=, <, <=, >, >=), found {}",
                        kind(&chunk[0])
                    ),
                ));
            };
            let num_path = path.index(pair * 2 + 1);
            let Some(x) = chunk[1].as_f64().filter(|_| chunk[1].is_number()) else {
                return Err(PatternError::new(
                    &num_path,
                    format!("expected a number after {op:?}, found {}", kind(&chunk[1])),
                ));
            };
            if x.abs() > EVENTBRIDGE_NUMERIC_LIMIT {
                self.extension(&num_path, "a numeric operand beyond ±5.0e9")?;
            }
            let slot = match op {
                "=" if items.len() == 2 => {
                    range = Range {
                        low: Some((x, true)),
                        high: Some((x, true)),
                    };
                    continue;
                }
                "=" => {
                    return Err(PatternError::new(
                        &op_path,
                        "\"=\" cannot be combined with another operator",
                    ));
                }
                ">" | ">=" => &mut range.low,
                "<" | "<=" => &mut range.high,
                other => {
                    return Err(PatternError::new(
                        &op_path,
                        format!("unknown numeric operator {other:?}; use =, <, <=, > or >="),
                    ));
                }
            };
            if slot.is_some() {
                return Err(PatternError::new(
                    &op_path,
                    "a range needs one lower bound (> or >=) and one upper bound (< or <=)",
                ));
            }
            *slot = Some((x, op.len() == 2));
        }
        if let (Some((l, _)), Some((h, _))) = (range.low, range.high)
            && items.len() == 4
            && l >= h
        {
            return Err(PatternError::new(
                path,
                format!("empty range: lower bound {l} must be below upper bound {h}"),
            ));
        }
        Ok(range)
    }
}

fn string<'v>(v: &'v Value, path: &JsonPath, op: &str) -> Result<&'v str> {
    v.as_str()
        .ok_or_else(|| PatternError::new(path, format!("{op} takes a string, found {}", kind(v))))
}

fn strings(v: &Value, path: &JsonPath, op: &str) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, x)| string(x, &path.index(i), op).map(str::to_owned))
            .collect(),
        Value::Array(_) => Err(PatternError::new(path, format!("{op} list is empty"))),
        other => Err(PatternError::new(
            path,
            format!(
                "{op} takes a string or a list of strings, found {}",
                kind(other)
            ),
        )),
    }
}
