//! Parser and evaluator for Azure role assignment conditions (Azure ABAC, `conditionVersion` "2.0"),
//! as used to *delegate role assignment management*: a condition on a "Role Based Access Control
//! Administrator" (or "User Access Administrator") assignment that limits which roles the delegate may
//! assign, and to whom.
//!
//! ```
//! use iothub_access_abac::{parse, Attributes, Source};
//!
//! struct Write;
//! impl Attributes for Write {
//!     fn action(&self) -> &str {
//!         "Microsoft.Authorization/roleAssignments/write"
//!     }
//!     fn value(&self, source: Source, attribute: &str) -> Option<Vec<String>> {
//!         match (source, attribute) {
//!             (Source::Request, "Microsoft.Authorization/roleAssignments:RoleDefinitionId") => {
//!                 Some(vec!["5E467623-BB1F-42F4-A55D-6E525E11384B".into()])
//!             }
//!             _ => None,
//!         }
//!     }
//! }
//!
//! let condition = parse(
//!     "(!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR \
//!      (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] \
//!       ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b})",
//! )
//! .unwrap();
//! assert!(condition.evaluate(&Write));
//! ```
//!
//! # Sources
//!
//! The language is documented by Microsoft in "Azure role assignment condition format and syntax"
//! (<https://learn.microsoft.com/en-us/azure/role-based-access-control/conditions-format>), the
//! role-assignment attributes in "Authorization actions and attributes"
//! (<https://learn.microsoft.com/en-us/azure/role-based-access-control/conditions-authorization-actions-attributes>)
//! and the delegation examples in "Examples to delegate Azure role assignment management with
//! conditions" (<https://learn.microsoft.com/en-us/azure/role-based-access-control/delegate-role-assignments-examples>).
//!
//! # Grammar accepted by [`parse`]
//!
//! ```text
//! condition  := expr EOF
//! expr       := unary { (AND | &&) unary }        -- all AND, or
//!             | unary { (OR | ||) unary }          -- all OR; mixing needs parentheses
//! unary      := (NOT | !) unary | primary
//! primary    := '(' expr ')'
//!             | ActionMatches '{' string '}'
//!             | SubOperationMatches '{' string '}'
//!             | Exists attribute
//!             | operand operator operand
//! operand    := attribute | '{' value { ',' value } '}' | value
//! attribute  := '@' (Request | Resource | Principal | Environment) '[' name ']'
//! value      := 'single-quoted string' | bare literal (GUID, integer, true/false)
//! operator   := base | (ForAnyOfAnyValues | ForAllOfAnyValues | ForAnyOfAllValues | ForAllOfAllValues) ':' base
//! ```
//!
//! Whitespace (newlines included) may appear between any two tokens.
//!
//! # Choices where Microsoft's documentation is silent
//!
//! * **Absent attributes fail closed.** When [`Attributes::value`] returns `None` (or an empty list),
//!   every comparison on that attribute is false — the negative operators (`GuidNotEquals`,
//!   `StringNotEquals…`, `ForAnyOfAllValues:GuidNotEquals`, …) included — and `Exists` is false. The
//!   documentation only shows (with `… OR NOT Exists @Request[…]`) that a positive comparison on a
//!   missing attribute does not hold; treating the negative ones the same way means a request that
//!   lacks an attribute can never satisfy a clause about it. Write `NOT Exists @…` or
//!   `!(… GuidEquals …)` to express "absent or different".
//! * **Plain operators are single-valued.** An operator without a `ForXOfYValues:` prefix takes
//!   exactly one right-hand value and holds only if the left side has exactly one value that
//!   compares true (the documentation reserves "Supports multiple strings and numbers" for the
//!   cross-product operators).
//! * **Keywords are case-insensitive**: `AND`, `OR`, `NOT`, `ActionMatches`, `SubOperationMatches`,
//!   `Exists` and every operator name are matched ignoring ASCII case. Attribute sources and
//!   attribute names are case-sensitive, spelled as documented (a wrongly cased
//!   `Microsoft.Authorization/roleAssignments:` attribute is an error rather than a silent miss).
//! * **AND and OR never mix without parentheses**: the documentation says the order of `a AND b OR c`
//!   "is ambiguous" and that "you must add parentheses", so [`parse`] refuses it.
//! * **Only documented operators**: e.g. `ForAnyOfAnyValues:StringStartsWith` is not in the
//!   documented cross-product list and is refused.
//! * **GUID literals** may be bare (as documented) or single-quoted; either way they must have the
//!   `00000000-0000-0000-0000-000000000000` form. They compare case-insensitively.
//! * **Strings**: inside `'…'` a backslash escapes the next character (`\'`, `\\`, and for the `Like`
//!   operators the documented `\*` and `\?`).
//! * **Length**: conditions longer than [`MAX_CONDITION_LEN`] bytes (the documented "up to 8 KB") are
//!   refused.

use std::fmt;

mod parse;

pub use parse::{ConditionError, ErrorKind, parse};

/// Longest condition [`parse`] accepts, in bytes. "A condition can be up to 8 KB long."
/// (<https://learn.microsoft.com/en-us/azure/role-based-access-control/conditions-faq>)
pub const MAX_CONDITION_LEN: usize = 8192;

/// The action of creating or updating a role assignment; its attributes come from `@Request`.
pub const ROLE_ASSIGNMENTS_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
/// The action of deleting a role assignment; its attributes come from `@Resource`.
pub const ROLE_ASSIGNMENTS_DELETE: &str = "Microsoft.Authorization/roleAssignments/delete";
/// "The role definition ID used in the role assignment" (GUID).
pub const ATTR_ROLE_DEFINITION_ID: &str = "Microsoft.Authorization/roleAssignments:RoleDefinitionId";
/// "The principal ID assigned to the role" (GUID).
pub const ATTR_PRINCIPAL_ID: &str = "Microsoft.Authorization/roleAssignments:PrincipalId";
/// The principal type, one of `User`, `ServicePrincipal`, `Group` (string).
pub const ATTR_PRINCIPAL_TYPE: &str = "Microsoft.Authorization/roleAssignments:PrincipalType";

/// Prefix of every role-assignment attribute; names under it must be documented ones.
const ROLE_ASSIGNMENT_PREFIX: &str = "Microsoft.Authorization/roleAssignments:";

/// Where an attribute's value comes from (`@Request[…]`, `@Resource[…]`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Part of the action request (the body of a role assignment PUT).
    Request,
    /// A property of the resource acted on (the existing role assignment for a DELETE).
    Resource,
    /// A Microsoft Entra custom security attribute of the caller.
    Principal,
    /// The circumstances of the request (network, time).
    Environment,
}

impl Source {
    /// The name as written after `@`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Request => "Request",
            Source::Resource => "Resource",
            Source::Principal => "Principal",
            Source::Environment => "Environment",
        }
    }

    fn from_name(name: &str) -> Option<Source> {
        [Source::Request, Source::Resource, Source::Principal, Source::Environment]
            .into_iter()
            .find(|source| source.as_str() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request supplies to [`Condition::evaluate`].
pub trait Attributes {
    /// The action being authorized, e.g. `Microsoft.Authorization/roleAssignments/write`.
    fn action(&self) -> &str;
    /// The suboperation, for actions that have them (e.g. `Blob.List`); none for role assignments.
    fn suboperation(&self) -> Option<&str> {
        None
    }
    /// The values of an attribute, `None` when the request has no such attribute. Names are passed
    /// exactly as written in the condition (for role assignments, the `ATTR_*` constants). GUID
    /// attributes must be bare GUIDs (not resource IDs).
    fn value(&self, source: Source, attribute: &str) -> Option<Vec<String>>;
}

/// A role assignment write or delete, the two actions role assignment conditions can target.
///
/// A write supplies its attributes under `@Request`, a delete under `@Resource`, as documented in
/// "Authorization actions and attributes".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignmentOperation {
    /// [`ROLE_ASSIGNMENTS_WRITE`] or [`ROLE_ASSIGNMENTS_DELETE`].
    pub action: String,
    /// Role definition GUID.
    pub role_definition_id: String,
    /// Principal object ID.
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal`, … ; `None` when the request carries none.
    pub principal_type: Option<String>,
}

impl RoleAssignmentOperation {
    /// Creating or updating an assignment.
    pub fn write(role_definition_id: &str, principal_id: &str, principal_type: Option<&str>) -> Self {
        Self::new(ROLE_ASSIGNMENTS_WRITE, role_definition_id, principal_id, principal_type)
    }

    /// Deleting an existing assignment (the values are the existing assignment's).
    pub fn delete(role_definition_id: &str, principal_id: &str, principal_type: Option<&str>) -> Self {
        Self::new(ROLE_ASSIGNMENTS_DELETE, role_definition_id, principal_id, principal_type)
    }

    fn new(action: &str, role_definition_id: &str, principal_id: &str, principal_type: Option<&str>) -> Self {
        RoleAssignmentOperation {
            action: action.to_string(),
            role_definition_id: role_definition_id.to_string(),
            principal_id: principal_id.to_string(),
            principal_type: principal_type.map(str::to_string),
        }
    }

    /// The source this operation's attributes come from.
    pub fn source(&self) -> Source {
        if self.action.eq_ignore_ascii_case(ROLE_ASSIGNMENTS_DELETE) { Source::Resource } else { Source::Request }
    }
}

impl Attributes for RoleAssignmentOperation {
    fn action(&self) -> &str {
        &self.action
    }

    fn value(&self, source: Source, attribute: &str) -> Option<Vec<String>> {
        if source != self.source() {
            return None;
        }
        match attribute {
            ATTR_ROLE_DEFINITION_ID => Some(vec![self.role_definition_id.clone()]),
            ATTR_PRINCIPAL_ID => Some(vec![self.principal_id.clone()]),
            ATTR_PRINCIPAL_TYPE => self.principal_type.clone().map(|value| vec![value]),
            _ => None,
        }
    }
}

/// Whether `name` is a documented attribute for `source`: the three role-assignment attributes
/// (under `@Request` and `@Resource`) and the documented environment attributes (`isPrivateLink`,
/// `Microsoft.Network/privateEndpoints`, `Microsoft.Network/virtualNetworks/subnets`, `UtcNow`).
pub fn known_attribute(source: Source, name: &str) -> bool {
    attribute_type(source, name).is_some()
}

/// The documented type of a known attribute.
fn attribute_type(source: Source, name: &str) -> Option<ValueType> {
    match (source, name) {
        (Source::Request | Source::Resource, ATTR_ROLE_DEFINITION_ID | ATTR_PRINCIPAL_ID) => Some(ValueType::Guid),
        (Source::Request | Source::Resource, ATTR_PRINCIPAL_TYPE) => Some(ValueType::String),
        (Source::Environment, "isPrivateLink") => Some(ValueType::Bool),
        (Source::Environment, "Microsoft.Network/privateEndpoints" | "Microsoft.Network/virtualNetworks/subnets") => {
            Some(ValueType::String)
        }
        (Source::Environment, "UtcNow") => Some(ValueType::DateTime),
        _ => None,
    }
}

/// The documented "Constrain roles and principal types" condition for the given role definition
/// GUIDs and principal types, formatted the way Microsoft's example is (multi-line, one-space
/// indentation, `OR ` with its trailing space): writes are checked on `@Request`, deletes on
/// `@Resource`.
///
/// With the Backup Contributor and Backup Reader GUIDs and `["User", "Group"]` the result is
/// byte-for-byte the example on "Examples to delegate Azure role assignment management with
/// conditions". Empty lists produce an empty value set `{}`, which [`parse`] (like Azure) refuses.
/// A `'` or `\` in a principal type is escaped with a backslash.
pub fn constrain_roles_and_principal_types(role_guids: &[&str], principal_types: &[&str]) -> String {
    let roles = role_guids.join(", ");
    let types = principal_types
        .iter()
        .map(|value| format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(", ");
    let block = |action: &str, source: Source| {
        format!(
            "(\n (\n  !(ActionMatches{{'{action}'}})\n )\n OR \n (\n  \
             @{source}[{ATTR_ROLE_DEFINITION_ID}] ForAnyOfAnyValues:GuidEquals {{{roles}}}\n  AND\n  \
             @{source}[{ATTR_PRINCIPAL_TYPE}] ForAnyOfAnyValues:StringEqualsIgnoreCase {{{types}}}\n )\n)"
        )
    };
    format!(
        "{}\nAND\n{}",
        block(ROLE_ASSIGNMENTS_WRITE, Source::Request),
        block(ROLE_ASSIGNMENTS_DELETE, Source::Resource)
    )
}

/// A parsed condition. Build one with [`parse`]; `Display` writes it back on one line in a
/// canonical form that parses to an equal condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    expr: Expr,
}

impl Condition {
    /// Whether the condition allows the request. A condition only constrains the actions it names
    /// with `ActionMatches`: for any other action the documented `!(ActionMatches{…}) OR …` shape
    /// evaluates to true.
    pub fn evaluate(&self, attrs: &dyn Attributes) -> bool {
        self.expr.evaluate(attrs)
    }

    /// The attributes the condition refers to, each once, in order of first appearance.
    pub fn attributes(&self) -> Vec<(Source, String)> {
        let mut out = Vec::new();
        self.expr.collect_attributes(&mut out);
        out
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

/// Expression tree.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    ActionMatches(String),
    SubOperationMatches(String),
    Exists(Attribute),
    Compare { left: Operand, operator: Operator, right: Operand },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Attribute {
    source: Source,
    name: String,
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}[{}]", self.source, self.name.replace(']', "\\]"))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Attribute(Attribute),
    /// Literal values, already checked against the operator's type.
    Values(Vec<Value>),
}

/// A typed literal or attribute value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// `raw` is the text between the quotes, escapes kept (the `Like` operators interpret them),
    /// `text` the same with escapes resolved.
    Str {
        raw: String,
        text: String,
    },
    /// Lower-case 8-4-4-4-12 form.
    Guid(String),
    Int(i64),
    Bool(bool),
    DateTime(DateTime),
}

impl Value {
    /// Converts an attribute value supplied by [`Attributes::value`]; `None` if it doesn't have the
    /// operator's type (such a value never compares true).
    fn from_attribute(value_type: ValueType, value: &str) -> Option<Value> {
        match value_type {
            ValueType::String => Some(Value::Str { raw: escape_str(value), text: value.to_string() }),
            ValueType::Guid => parse_guid(value).map(Value::Guid),
            ValueType::Int => value.trim().parse().ok().map(Value::Int),
            ValueType::Bool => parse_bool(value).map(Value::Bool),
            ValueType::DateTime => DateTime::parse(value).map(Value::DateTime),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str { raw, .. } => write!(f, "'{raw}'"),
            Value::Guid(guid) => f.write_str(guid),
            Value::Int(int) => write!(f, "{int}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::DateTime(datetime) => write!(f, "'{}'", datetime.text),
        }
    }
}

/// Escapes `\`, `'`, `*` and `?` so that an attribute's value, used where a raw (escaped) string
/// is expected, is taken literally (also as the pattern of a `Like` operator).
fn escape_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '\'' | '*' | '?') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lower-cases a GUID of the documented `00000000-0000-0000-0000-000000000000` form.
fn parse_guid(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 36
        && bytes.iter().enumerate().all(
            |(i, b)| {
                if matches!(i, 8 | 13 | 18 | 23) { *b == b'-' } else { b.is_ascii_hexdigit() }
            },
        );
    well_formed.then(|| value.to_ascii_lowercase())
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A `yyyy-mm-ddThh:mm:ss[.fffffff]Z` timestamp ("Full-precision check with the format:
/// `yyyy-mm-ddThh:mm:ss.mmmmmmmZ`").
#[derive(Debug, Clone)]
struct DateTime {
    /// (year, month, day, hour, minute, second, 100-nanosecond ticks): compares chronologically.
    key: (u32, u32, u32, u32, u32, u32, u32),
    text: String,
}

impl PartialEq for DateTime {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl DateTime {
    fn parse(text: &str) -> Option<DateTime> {
        let b = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let digits = b.get(range)?;
            digits.iter().all(u8::is_ascii_digit).then(|| digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let separators_ok = b.len() >= 20
            && b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't')
            && b[13] == b':'
            && b[16] == b':'
            && matches!(b[b.len() - 1], b'Z' | b'z');
        if !separators_ok {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let fraction = &b[19..b.len() - 1];
        let ticks = match fraction {
            [] => 0,
            [b'.', digits @ ..] if (1..=7).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) => {
                digits.iter().chain(std::iter::repeat(&b'0')).take(7).fold(0, |n, d| n * 10 + u32::from(d - b'0'))
            }
            _ => return None,
        };
        let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 60;
        valid.then(|| DateTime { key: (year, month, day, hour, minute, second, ticks), text: text.to_string() })
    }
}

/// The type an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    String,
    Int,
    DateTime,
    Guid,
    Bool,
}

impl ValueType {
    fn describe(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Int => "integer",
            ValueType::DateTime => "date-time",
            ValueType::Guid => "GUID",
            ValueType::Bool => "boolean",
        }
    }
}

/// `ForXOfYValues:` prefix of a cross-product operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quantifier {
    AnyOfAny,
    AllOfAny,
    AnyOfAll,
    AllOfAll,
}

impl Quantifier {
    const ALL: [Quantifier; 4] =
        [Quantifier::AnyOfAny, Quantifier::AllOfAny, Quantifier::AnyOfAll, Quantifier::AllOfAll];

    fn name(self) -> &'static str {
        match self {
            Quantifier::AnyOfAny => "ForAnyOfAnyValues",
            Quantifier::AllOfAny => "ForAllOfAnyValues",
            Quantifier::AnyOfAll => "ForAnyOfAllValues",
            Quantifier::AllOfAll => "ForAllOfAllValues",
        }
    }
}

/// Ordering test of the numeric and date-time operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ordering {
    Equals,
    NotEquals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl Ordering {
    const ALL: [Ordering; 6] = [
        Ordering::Equals,
        Ordering::NotEquals,
        Ordering::LessThan,
        Ordering::LessThanEquals,
        Ordering::GreaterThan,
        Ordering::GreaterThanEquals,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Ordering::Equals => "Equals",
            Ordering::NotEquals => "NotEquals",
            Ordering::LessThan => "LessThan",
            Ordering::LessThanEquals => "LessThanEquals",
            Ordering::GreaterThan => "GreaterThan",
            Ordering::GreaterThanEquals => "GreaterThanEquals",
        }
    }

    fn holds<T: PartialOrd>(self, left: &T, right: &T) -> bool {
        match self {
            Ordering::Equals => left == right,
            Ordering::NotEquals => left != right,
            Ordering::LessThan => left < right,
            Ordering::LessThanEquals => left <= right,
            Ordering::GreaterThan => left > right,
            Ordering::GreaterThanEquals => left >= right,
        }
    }
}

/// The string tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringTest {
    Equals,
    StartsWith,
    Like,
}

/// A comparison function without its cross-product prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    String { test: StringTest, negated: bool, ignore_case: bool },
    Numeric(Ordering),
    DateTime(Ordering),
    Guid { negated: bool },
    Bool { negated: bool },
}

impl Base {
    /// Every documented base function.
    fn all() -> Vec<Base> {
        let mut all = Vec::new();
        for test in [StringTest::Equals, StringTest::StartsWith, StringTest::Like] {
            for negated in [false, true] {
                for ignore_case in [false, true] {
                    all.push(Base::String { test, negated, ignore_case });
                }
            }
        }
        all.extend(Ordering::ALL.iter().map(|o| Base::Numeric(*o)));
        all.extend(Ordering::ALL.iter().map(|o| Base::DateTime(*o)));
        all.extend([false, true].map(|negated| Base::Guid { negated }));
        all.extend([false, true].map(|negated| Base::Bool { negated }));
        all
    }

    fn name(self) -> String {
        let not = |negated: bool| if negated { "Not" } else { "" };
        match self {
            Base::String { test, negated, ignore_case } => {
                let test = match test {
                    StringTest::Equals => "Equals",
                    StringTest::StartsWith => "StartsWith",
                    StringTest::Like => "Like",
                };
                format!("String{}{test}{}", not(negated), if ignore_case { "IgnoreCase" } else { "" })
            }
            Base::Numeric(ordering) => format!("Numeric{}", ordering.suffix()),
            Base::DateTime(ordering) => format!("DateTime{}", ordering.suffix()),
            Base::Guid { negated } => format!("Guid{}Equals", not(negated)),
            Base::Bool { negated } => format!("Bool{}Equals", not(negated)),
        }
    }

    /// Whether the documentation lists this function after a `ForXOfYValues:` prefix: the string
    /// Equals/Like families, the numeric ones and the GUID ones.
    fn cross_product_allowed(self) -> bool {
        match self {
            Base::String { test, .. } => test != StringTest::StartsWith,
            Base::Numeric(_) | Base::Guid { .. } => true,
            Base::DateTime(_) | Base::Bool { .. } => false,
        }
    }

    fn value_type(self) -> ValueType {
        match self {
            Base::String { .. } => ValueType::String,
            Base::Numeric(_) => ValueType::Int,
            Base::DateTime(_) => ValueType::DateTime,
            Base::Guid { .. } => ValueType::Guid,
            Base::Bool { .. } => ValueType::Bool,
        }
    }

    /// Compares one left value to one right value of this function's type.
    fn compare(self, left: &Value, right: &Value) -> bool {
        match (self, left, right) {
            (
                Base::String { test, negated, ignore_case },
                Value::Str { text: left, .. },
                Value::Str { raw: right_raw, text: right },
            ) => {
                let positive = match test {
                    StringTest::Equals if ignore_case => left.to_lowercase() == right.to_lowercase(),
                    StringTest::Equals => left == right,
                    StringTest::StartsWith if ignore_case => left.to_lowercase().starts_with(&right.to_lowercase()),
                    StringTest::StartsWith => left.starts_with(right.as_str()),
                    StringTest::Like => like(right_raw, left, ignore_case),
                };
                positive != negated
            }
            (Base::Numeric(ordering), Value::Int(left), Value::Int(right)) => ordering.holds(left, right),
            (Base::DateTime(ordering), Value::DateTime(left), Value::DateTime(right)) => {
                ordering.holds(&left.key, &right.key)
            }
            (Base::Guid { negated }, Value::Guid(left), Value::Guid(right)) => (left == right) != negated,
            (Base::Bool { negated }, Value::Bool(left), Value::Bool(right)) => (left == right) != negated,
            // Values of another type never compare true (the parser prevents this for literals).
            _ => false,
        }
    }
}

/// A comparison operator: a base function, optionally with a cross-product prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    quantifier: Option<Quantifier>,
    base: Base,
}

impl Operator {
    /// Looks up a documented operator name, ignoring ASCII case.
    fn from_name(name: &str) -> Option<Operator> {
        let (quantifier, base_name) = match name.split_once(':') {
            Some((prefix, rest)) => {
                (Some(Quantifier::ALL.into_iter().find(|q| q.name().eq_ignore_ascii_case(prefix))?), rest)
            }
            None => (None, name),
        };
        let base = Base::all().into_iter().find(|base| base.name().eq_ignore_ascii_case(base_name))?;
        if quantifier.is_some() && !base.cross_product_allowed() {
            return None;
        }
        Some(Operator { quantifier, base })
    }

    fn name(self) -> String {
        match self.quantifier {
            Some(quantifier) => format!("{}:{}", quantifier.name(), self.base.name()),
            None => self.base.name(),
        }
    }
}

impl Expr {
    fn evaluate(&self, attrs: &dyn Attributes) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|item| item.evaluate(attrs)),
            Expr::Or(items) => items.iter().any(|item| item.evaluate(attrs)),
            Expr::Not(inner) => !inner.evaluate(attrs),
            Expr::ActionMatches(pattern) => action_matches(pattern, attrs.action()),
            Expr::SubOperationMatches(pattern) => attrs.suboperation().is_some_and(|sub| action_matches(pattern, sub)),
            Expr::Exists(attribute) => {
                attrs.value(attribute.source, &attribute.name).is_some_and(|values| !values.is_empty())
            }
            Expr::Compare { left, operator, right } => compare(attrs, left, *operator, right),
        }
    }

    fn collect_attributes(&self, out: &mut Vec<(Source, String)>) {
        let mut push = |attribute: &Attribute| {
            let entry = (attribute.source, attribute.name.clone());
            if !out.contains(&entry) {
                out.push(entry);
            }
        };
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|item| item.collect_attributes(out)),
            Expr::Not(inner) => inner.collect_attributes(out),
            Expr::ActionMatches(_) | Expr::SubOperationMatches(_) => {}
            Expr::Exists(attribute) => push(attribute),
            Expr::Compare { left, right, .. } => {
                for operand in [left, right] {
                    if let Operand::Attribute(attribute) = operand {
                        push(attribute);
                    }
                }
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Nested AND/OR groups are always parenthesised, which keeps the tree's shape on reparse.
        let group = |f: &mut fmt::Formatter<'_>, items: &[Expr], keyword: &str| {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {keyword} ")?;
                }
                match item {
                    Expr::And(_) | Expr::Or(_) => write!(f, "({item})")?,
                    _ => write!(f, "{item}")?,
                }
            }
            Ok(())
        };
        match self {
            Expr::And(items) => group(f, items, "AND"),
            Expr::Or(items) => group(f, items, "OR"),
            Expr::Not(inner) => write!(f, "!({inner})"),
            Expr::ActionMatches(pattern) => write!(f, "ActionMatches{{'{pattern}'}}"),
            Expr::SubOperationMatches(pattern) => write!(f, "SubOperationMatches{{'{pattern}'}}"),
            Expr::Exists(attribute) => write!(f, "Exists {attribute}"),
            Expr::Compare { left, operator, right } => {
                let operand = |f: &mut fmt::Formatter<'_>, operand: &Operand| match operand {
                    Operand::Attribute(attribute) => write!(f, "{attribute}"),
                    Operand::Values(values) if values.len() == 1 && operator.quantifier.is_none() => {
                        write!(f, "{}", values[0])
                    }
                    Operand::Values(values) => {
                        let values: Vec<String> = values.iter().map(Value::to_string).collect();
                        write!(f, "{{{}}}", values.join(", "))
                    }
                };
                operand(f, left)?;
                write!(f, " {} ", operator.name())?;
                operand(f, right)
            }
        }
    }
}

/// Resolves both operands and applies the operator with its quantifier.
fn compare(attrs: &dyn Attributes, left: &Operand, operator: Operator, right: &Operand) -> bool {
    let value_type = operator.base.value_type();
    let resolve = |operand: &Operand| -> Vec<Option<Value>> {
        match operand {
            Operand::Values(values) => values.iter().cloned().map(Some).collect(),
            Operand::Attribute(attribute) => attrs
                .value(attribute.source, &attribute.name)
                .unwrap_or_default()
                .iter()
                .map(|value| Value::from_attribute(value_type, value))
                .collect(),
        }
    };
    let (left, right) = (resolve(left), resolve(right));
    // Absent (or empty) on either side: false, whatever the operator (see the crate docs).
    if left.is_empty() || right.is_empty() {
        return false;
    }
    let test = |l: &Option<Value>, r: &Option<Value>| match (l, r) {
        (Some(l), Some(r)) => operator.base.compare(l, r),
        _ => false,
    };
    match operator.quantifier {
        None => left.len() == 1 && right.len() == 1 && test(&left[0], &right[0]),
        Some(Quantifier::AnyOfAny) => left.iter().any(|l| right.iter().any(|r| test(l, r))),
        Some(Quantifier::AllOfAny) => left.iter().all(|l| right.iter().any(|r| test(l, r))),
        Some(Quantifier::AnyOfAll) => left.iter().any(|l| right.iter().all(|r| test(l, r))),
        Some(Quantifier::AllOfAll) => left.iter().all(|l| right.iter().all(|r| test(l, r))),
    }
}

/// One element of a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pattern {
    AnyRun,
    AnyOne,
    Char(char),
}

/// `ActionMatches`: case-insensitive, `*` matches any run of characters (`/` included), as in the
/// `Actions` of a role definition (`*/read`, `Microsoft.Authorization/*/Write`).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern: Vec<Pattern> =
        pattern.chars().map(|c| if c == '*' { Pattern::AnyRun } else { Pattern::Char(c) }).collect();
    glob(&pattern, action, true)
}

/// `StringLike`: `*` any run, `?` any one character, `\` escapes the next character.
fn like(raw_pattern: &str, text: &str, ignore_case: bool) -> bool {
    let mut pattern = Vec::new();
    let mut chars = raw_pattern.chars();
    while let Some(c) = chars.next() {
        pattern.push(match c {
            '*' => Pattern::AnyRun,
            '?' => Pattern::AnyOne,
            '\\' => Pattern::Char(chars.next().unwrap_or('\\')),
            other => Pattern::Char(other),
        });
    }
    glob(&pattern, text, ignore_case)
}

/// Wildcard matching with single-star backtracking (linear in practice, never exponential).
fn glob(pattern: &[Pattern], text: &str, ignore_case: bool) -> bool {
    let text: Vec<char> = text.chars().collect();
    let same = |p: char, t: char| p == t || (ignore_case && p.to_lowercase().eq(t.to_lowercase()));
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Pattern::AnyRun) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Pattern::AnyOne) => {
                p += 1;
                t += 1;
            }
            Some(Pattern::Char(c)) if same(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    backtrack = Some((star, matched + 1));
                    p = star + 1;
                    t = matched + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|element| *element == Pattern::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_follows_the_documented_examples() {
        assert!(like("a*c?", "abcd", false));
        assert!(!like("A*C?", "abcd", false));
        assert!(like("A*C?", "abcd", true));
        assert!(!like("a*c", "abcd", false));
        assert!(like("a\\*", "a*", false));
        assert!(!like("a\\*", "ab", false));
        assert!(like("*", "", false));
    }

    #[test]
    fn actions_match_case_insensitively_with_star_across_segments() {
        assert!(action_matches("Microsoft.Authorization/roleAssignments/*", ROLE_ASSIGNMENTS_WRITE));
        assert!(!action_matches("Microsoft.Authorization/roleDefinitions/*", ROLE_ASSIGNMENTS_WRITE));
        assert!(action_matches("microsoft.authorization/*/WRITE", ROLE_ASSIGNMENTS_WRITE));
        assert!(!action_matches("Microsoft.Authorization/roleAssignments/write", ROLE_ASSIGNMENTS_DELETE));
        assert!(!action_matches("Microsoft.Authorization/roleAssignments/writ", ROLE_ASSIGNMENTS_WRITE));
    }

    #[test]
    fn every_documented_operator_name_round_trips() {
        for quantifier in [None].into_iter().chain(Quantifier::ALL.map(Some)) {
            for base in Base::all() {
                let operator = Operator { quantifier, base };
                let found = Operator::from_name(&operator.name());
                if quantifier.is_none() || base.cross_product_allowed() {
                    assert_eq!(found, Some(operator), "{}", operator.name());
                } else {
                    assert_eq!(found, None, "{}", operator.name());
                }
            }
        }
        assert_eq!(Base::all().len(), 28);
    }

    #[test]
    fn datetimes_compare_chronologically() {
        let a = DateTime::parse("2022-06-01T00:00:00.0Z").unwrap();
        let b = DateTime::parse("2022-06-01T00:00:00Z").unwrap();
        let c = DateTime::parse("2022-06-01T00:00:00.0000001Z").unwrap();
        assert_eq!(a, b);
        assert!(a.key < c.key);
        assert!(DateTime::parse("2022-13-01T00:00:00Z").is_none());
        assert!(DateTime::parse("2022-06-01 00:00:00Z").is_none());
        assert!(DateTime::parse("2022-06-01T00:00:00.12345678Z").is_none());
    }

    #[test]
    fn guids_are_validated_and_lowercased() {
        assert_eq!(
            parse_guid("5E467623-BB1F-42F4-A55D-6E525E11384B").as_deref(),
            Some("5e467623-bb1f-42f4-a55d-6e525e11384b")
        );
        assert_eq!(parse_guid("5e467623bb1f42f4a55d6e525e11384b"), None);
        assert_eq!(parse_guid("/providers/Microsoft.Authorization/roleDefinitions/x"), None);
        assert_eq!(parse_guid("5e467623-bb1f-42f4-a55d-6e525e11384g"), None);
    }
}
