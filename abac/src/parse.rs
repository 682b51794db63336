//! Lexer and recursive-descent parser for the condition language (grammar in the crate docs).

use std::fmt;

use crate::{
    Attribute, Condition, Expr, MAX_CONDITION_LEN, Operand, Operator, ROLE_ASSIGNMENT_PREFIX, Source, Value, ValueType,
    attribute_type, parse_bool, parse_guid,
};

/// Deepest nesting of parentheses / `NOT`s accepted (keeps recursion bounded).
const MAX_DEPTH: usize = 128;

/// Why a condition was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Byte offset into the condition text where the problem was found.
    pub offset: usize,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.kind, self.offset)
    }
}

impl std::error::Error for ConditionError {}

/// The kinds of [`ConditionError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// Longer than [`MAX_CONDITION_LEN`](crate::MAX_CONDITION_LEN) bytes.
    TooLong(usize),
    /// Nested deeper than the parser allows.
    TooDeep,
    /// A character that starts no token.
    UnexpectedChar(char),
    /// A `'` string without its closing quote.
    UnterminatedString,
    /// An `@Source[` without its closing `]`.
    UnterminatedAttribute,
    /// `@Something` where Something is not Request, Resource, Principal or Environment.
    UnknownSource(String),
    /// `@Source[]`.
    EmptyAttributeName,
    /// A `Microsoft.Authorization/roleAssignments:` attribute that is not documented for the source.
    UnknownAttribute {
        /// The attribute source.
        source: Source,
        /// The name as written.
        name: String,
    },
    /// A word in operator position that is no documented operator.
    UnknownOperator(String),
    /// `Name{…}` where Name is not `ActionMatches` or `SubOperationMatches`.
    UnknownFunction(String),
    /// A token other than the one the grammar needs.
    Expected {
        /// What the grammar needs here.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A `(` never closed.
    UnclosedParenthesis,
    /// A `)` that closes nothing.
    UnmatchedParenthesis,
    /// Text after a complete condition.
    TrailingInput(String),
    /// `a AND b OR c` without parentheses.
    MixedAndOr,
    /// `{}`.
    EmptyValueSet,
    /// A literal that is not of the operator's type.
    InvalidValue {
        /// The literal as written.
        value: String,
        /// The type the operator compares.
        expected: &'static str,
    },
    /// A set of several values given to an operator without a `ForXOfYValues:` prefix.
    SingleValueExpected {
        /// The operator.
        operator: String,
        /// How many values were given.
        count: usize,
    },
    /// An operator of the wrong type for a documented attribute (e.g. `StringEquals` on a GUID).
    OperatorTypeMismatch {
        /// The operator.
        operator: String,
        /// The attribute, `@Source[name]`.
        attribute: String,
        /// The attribute's documented type.
        expected: &'static str,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Empty => write!(f, "empty condition"),
            ErrorKind::TooLong(len) => {
                write!(f, "condition is {len} bytes long, more than the {MAX_CONDITION_LEN} allowed")
            }
            ErrorKind::TooDeep => write!(f, "condition nested more than {MAX_DEPTH} levels deep"),
            ErrorKind::UnexpectedChar(c) => write!(f, "unexpected character '{c}'"),
            ErrorKind::UnterminatedString => write!(f, "unterminated string (missing closing ')"),
            ErrorKind::UnterminatedAttribute => write!(f, "unterminated attribute (missing ])"),
            ErrorKind::UnknownSource(source) => write!(f, "unknown attribute source '@{source}'"),
            ErrorKind::EmptyAttributeName => write!(f, "empty attribute name"),
            ErrorKind::UnknownAttribute { source, name } => write!(f, "unknown attribute '@{source}[{name}]'"),
            ErrorKind::UnknownOperator(word) => write!(f, "unknown operator '{word}'"),
            ErrorKind::UnknownFunction(word) => write!(f, "unknown function '{word}'"),
            ErrorKind::Expected { expected, found } => write!(f, "expected {expected}, found {found}"),
            ErrorKind::UnclosedParenthesis => write!(f, "unbalanced parentheses: '(' is never closed"),
            ErrorKind::UnmatchedParenthesis => write!(f, "unbalanced parentheses: ')' closes nothing"),
            ErrorKind::TrailingInput(found) => write!(f, "unexpected {found} after the end of the condition"),
            ErrorKind::MixedAndOr => write!(f, "AND and OR mixed without parentheses (the order is ambiguous)"),
            ErrorKind::EmptyValueSet => write!(f, "empty value set"),
            ErrorKind::InvalidValue { value, expected } => write!(f, "invalid {expected} value {value}"),
            ErrorKind::SingleValueExpected { operator, count } => {
                write!(f, "operator '{operator}' takes a single value but got {count} (use a ForAnyOfAnyValues: form)")
            }
            ErrorKind::OperatorTypeMismatch { operator, attribute, expected } => {
                write!(f, "operator '{operator}' cannot compare {attribute}, which is a {expected}")
            }
        }
    }
}

/// Parses a condition (see the crate documentation for the grammar and the choices made).
pub fn parse(text: &str) -> Result<Condition, ConditionError> {
    if text.len() > MAX_CONDITION_LEN {
        return Err(ConditionError { kind: ErrorKind::TooLong(text.len()), offset: MAX_CONDITION_LEN });
    }
    let tokens = lex(text)?;
    let mut parser = Parser { tokens, pos: 0 };
    if parser.peek().kind == Tok::Eof {
        return Err(ConditionError { kind: ErrorKind::Empty, offset: 0 });
    }
    let expr = parser.expr(0)?;
    let next = parser.peek();
    match next.kind {
        Tok::Eof => Ok(Condition { expr }),
        Tok::RParen => Err(next.error(ErrorKind::UnmatchedParenthesis)),
        _ => Err(next.error(ErrorKind::TrailingInput(next.describe()))),
    }
}

/// Token kinds.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    /// `!`
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    Attribute(Attribute),
    /// Text between single quotes, escapes kept.
    Str(String),
    /// A run of `[A-Za-z0-9_.:+-]`: keywords, operators, bare literals.
    Word(String),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    offset: usize,
}

impl Token {
    fn error(&self, kind: ErrorKind) -> ConditionError {
        ConditionError { kind, offset: self.offset }
    }

    fn describe(&self) -> String {
        match &self.kind {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::Comma => "','".into(),
            Tok::Bang => "'!'".into(),
            Tok::AndAnd => "'&&'".into(),
            Tok::OrOr => "'||'".into(),
            Tok::Attribute(attribute) => format!("attribute {attribute}"),
            Tok::Str(raw) => format!("string '{raw}'"),
            Tok::Word(word) => format!("'{word}'"),
            Tok::Eof => "end of condition".into(),
        }
    }

    /// The word, if this token is one equal to `keyword` ignoring ASCII case.
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, Tok::Word(word) if word.eq_ignore_ascii_case(keyword))
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-')
}

fn lex(text: &str) -> Result<Vec<Token>, ConditionError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(offset, c)) = chars.peek() {
        let error = |kind| ConditionError { kind, offset };
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            ',' => Some(Tok::Comma),
            '!' => Some(Tok::Bang),
            _ => None,
        };
        if let Some(kind) = single {
            chars.next();
            tokens.push(Token { kind, offset });
            continue;
        }
        let kind = match c {
            '&' | '|' => {
                chars.next();
                match chars.next() {
                    Some((_, second)) if second == c => {
                        if c == '&' {
                            Tok::AndAnd
                        } else {
                            Tok::OrOr
                        }
                    }
                    _ => return Err(error(ErrorKind::UnexpectedChar(c))),
                }
            }
            '\'' => {
                chars.next();
                let mut raw = String::new();
                loop {
                    match chars.next() {
                        None => return Err(error(ErrorKind::UnterminatedString)),
                        Some((_, '\'')) => break,
                        Some((_, '\\')) => {
                            raw.push('\\');
                            match chars.next() {
                                Some((_, escaped)) => raw.push(escaped),
                                None => return Err(error(ErrorKind::UnterminatedString)),
                            }
                        }
                        Some((_, other)) => raw.push(other),
                    }
                }
                Tok::Str(raw)
            }
            '@' => {
                chars.next();
                let mut source_name = String::new();
                while let Some(&(_, c)) = chars.peek().filter(|(_, c)| c.is_ascii_alphabetic()) {
                    source_name.push(c);
                    chars.next();
                }
                let source =
                    Source::from_name(&source_name).ok_or_else(|| error(ErrorKind::UnknownSource(source_name)))?;
                match chars.next() {
                    Some((_, '[')) => {}
                    Some((at, other)) => {
                        return Err(ConditionError { kind: ErrorKind::UnexpectedChar(other), offset: at });
                    }
                    None => return Err(error(ErrorKind::UnterminatedAttribute)),
                }
                let mut name = String::new();
                loop {
                    match chars.next() {
                        None => return Err(error(ErrorKind::UnterminatedAttribute)),
                        Some((_, ']')) => break,
                        // `\]` (and any `\x`) stands for the escaped character.
                        Some((_, '\\')) => match chars.next() {
                            Some((_, escaped)) => name.push(escaped),
                            None => return Err(error(ErrorKind::UnterminatedAttribute)),
                        },
                        Some((_, other)) => name.push(other),
                    }
                }
                if name.trim().is_empty() {
                    return Err(error(ErrorKind::EmptyAttributeName));
                }
                Tok::Attribute(check_attribute(Attribute { source, name }, offset)?)
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek().filter(|(_, c)| is_word_char(*c)) {
                    word.push(c);
                    chars.next();
                }
                Tok::Word(word)
            }
            other => return Err(error(ErrorKind::UnexpectedChar(other))),
        };
        tokens.push(Token { kind, offset });
    }
    tokens.push(Token { kind: Tok::Eof, offset: text.len() });
    Ok(tokens)
}

/// Refuses undocumented `Microsoft.Authorization/roleAssignments:` attributes (any source).
fn check_attribute(attribute: Attribute, offset: usize) -> Result<Attribute, ConditionError> {
    let in_namespace = attribute
        .name
        .get(..ROLE_ASSIGNMENT_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(ROLE_ASSIGNMENT_PREFIX));
    if in_namespace && attribute_type(attribute.source, &attribute.name).is_none() {
        let Attribute { source, name } = attribute;
        return Err(ConditionError { kind: ErrorKind::UnknownAttribute { source, name }, offset });
    }
    Ok(attribute)
}

/// A literal as written, typed once the operator is known.
#[derive(Debug, Clone)]
struct RawValue {
    text: String,
    quoted: bool,
    offset: usize,
}

/// An operand before typing.
enum RawOperand {
    Attribute(Attribute, usize),
    /// A single literal or a `{…}` set.
    Values {
        values: Vec<RawValue>,
        offset: usize,
    },
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// AND or OR between two operands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Connective {
    And,
    Or,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn next(&mut self) -> Token {
        let token = self.tokens[self.pos].clone();
        if token.kind != Tok::Eof {
            self.pos += 1;
        }
        token
    }

    fn expect(&mut self, kind: Tok, expected: &'static str) -> Result<Token, ConditionError> {
        let token = self.next();
        if token.kind == kind {
            Ok(token)
        } else {
            Err(token.error(ErrorKind::Expected { expected, found: token.describe() }))
        }
    }

    fn connective(&self) -> Option<Connective> {
        let token = self.peek();
        if token.kind == Tok::AndAnd || token.is_keyword("AND") {
            Some(Connective::And)
        } else if token.kind == Tok::OrOr || token.is_keyword("OR") {
            Some(Connective::Or)
        } else {
            None
        }
    }

    /// `unary { connective unary }` with a single kind of connective.
    fn expr(&mut self, depth: usize) -> Result<Expr, ConditionError> {
        let first = self.unary(depth)?;
        let Some(connective) = self.connective() else {
            return Ok(first);
        };
        let mut items = vec![first];
        while let Some(next) = self.connective() {
            if next != connective {
                return Err(self.peek().error(ErrorKind::MixedAndOr));
            }
            self.next();
            items.push(self.unary(depth)?);
        }
        Ok(match connective {
            Connective::And => Expr::And(items),
            Connective::Or => Expr::Or(items),
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ConditionError> {
        if depth > MAX_DEPTH {
            return Err(self.peek().error(ErrorKind::TooDeep));
        }
        let token = self.peek();
        if token.kind == Tok::Bang || token.is_keyword("NOT") {
            self.next();
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ConditionError> {
        let token = self.peek().clone();
        match &token.kind {
            Tok::LParen => {
                self.next();
                let inner = self.expr(depth + 1)?;
                let close = self.peek();
                match close.kind {
                    Tok::RParen => {
                        self.next();
                        Ok(inner)
                    }
                    // Ran out of input with this `(` still open.
                    Tok::Eof => Err(token.error(ErrorKind::UnclosedParenthesis)),
                    _ => Err(close.error(ErrorKind::Expected { expected: "')'", found: close.describe() })),
                }
            }
            Tok::Word(word) if word.eq_ignore_ascii_case("ActionMatches") => {
                self.next();
                Ok(Expr::ActionMatches(self.function_argument()?))
            }
            Tok::Word(word) if word.eq_ignore_ascii_case("SubOperationMatches") => {
                self.next();
                Ok(Expr::SubOperationMatches(self.function_argument()?))
            }
            Tok::Word(word) if word.eq_ignore_ascii_case("Exists") => {
                self.next();
                let next = self.next();
                match next.kind {
                    Tok::Attribute(attribute) => Ok(Expr::Exists(attribute)),
                    _ => Err(next
                        .error(ErrorKind::Expected { expected: "an attribute after Exists", found: next.describe() })),
                }
            }
            Tok::Word(word) if self.tokens[self.pos + 1].kind == Tok::LBrace => {
                Err(token.error(ErrorKind::UnknownFunction(word.clone())))
            }
            _ => self.comparison(),
        }
    }

    /// `{'pattern'}` after ActionMatches / SubOperationMatches.
    fn function_argument(&mut self) -> Result<String, ConditionError> {
        self.expect(Tok::LBrace, "'{'")?;
        let token = self.next();
        let Tok::Str(raw) = token.kind else {
            return Err(token.error(ErrorKind::Expected { expected: "a quoted action", found: token.describe() }));
        };
        self.expect(Tok::RBrace, "'}'")?;
        Ok(raw)
    }

    fn comparison(&mut self) -> Result<Expr, ConditionError> {
        let left = self.operand()?;
        let token = self.next();
        let operator = match &token.kind {
            Tok::Word(word) => {
                Operator::from_name(word).ok_or_else(|| token.error(ErrorKind::UnknownOperator(word.clone())))?
            }
            _ => return Err(token.error(ErrorKind::Expected { expected: "an operator", found: token.describe() })),
        };
        let right = self.operand()?;
        let left = typed_operand(left, operator)?;
        let right = typed_operand(right, operator)?;
        Ok(Expr::Compare { left, operator, right })
    }

    fn operand(&mut self) -> Result<RawOperand, ConditionError> {
        let token = self.next();
        let raw_value = |text: &str, quoted: bool| RawValue { text: text.to_string(), quoted, offset: token.offset };
        match &token.kind {
            Tok::Attribute(attribute) => Ok(RawOperand::Attribute(attribute.clone(), token.offset)),
            Tok::Str(raw) => Ok(RawOperand::Values { values: vec![raw_value(raw, true)], offset: token.offset }),
            Tok::Word(word) if !is_reserved(word) => {
                Ok(RawOperand::Values { values: vec![raw_value(word, false)], offset: token.offset })
            }
            Tok::LBrace => {
                let mut values = Vec::new();
                if self.peek().kind == Tok::RBrace {
                    return Err(token.error(ErrorKind::EmptyValueSet));
                }
                loop {
                    let item = self.next();
                    match &item.kind {
                        Tok::Str(raw) => values.push(RawValue { text: raw.clone(), quoted: true, offset: item.offset }),
                        Tok::Word(word) => {
                            values.push(RawValue { text: word.clone(), quoted: false, offset: item.offset })
                        }
                        _ => {
                            return Err(item.error(ErrorKind::Expected { expected: "a value", found: item.describe() }));
                        }
                    }
                    let separator = self.next();
                    match separator.kind {
                        Tok::Comma => continue,
                        Tok::RBrace => break,
                        _ => {
                            return Err(separator
                                .error(ErrorKind::Expected { expected: "',' or '}'", found: separator.describe() }));
                        }
                    }
                }
                Ok(RawOperand::Values { values, offset: token.offset })
            }
            _ => Err(token.error(ErrorKind::Expected { expected: "an expression", found: token.describe() })),
        }
    }
}

/// Words that can't be bare literals.
fn is_reserved(word: &str) -> bool {
    ["AND", "OR", "NOT", "ActionMatches", "SubOperationMatches", "Exists"]
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword))
}

/// Checks an operand against the operator: a documented attribute must have the operator's type,
/// literals are converted to it, a plain operator gets exactly one literal.
fn typed_operand(operand: RawOperand, operator: Operator) -> Result<Operand, ConditionError> {
    let value_type = operator.base.value_type();
    match operand {
        RawOperand::Attribute(attribute, offset) => {
            if let Some(expected) = attribute_type(attribute.source, &attribute.name)
                && expected != value_type
            {
                return Err(ConditionError {
                    kind: ErrorKind::OperatorTypeMismatch {
                        operator: operator.name(),
                        attribute: attribute.to_string(),
                        expected: expected.describe(),
                    },
                    offset,
                });
            }
            Ok(Operand::Attribute(attribute))
        }
        RawOperand::Values { values, offset } => {
            if operator.quantifier.is_none() && values.len() != 1 {
                return Err(ConditionError {
                    kind: ErrorKind::SingleValueExpected { operator: operator.name(), count: values.len() },
                    offset,
                });
            }
            values.iter().map(|value| typed_value(value, value_type)).collect::<Result<_, _>>().map(Operand::Values)
        }
    }
}

/// Converts one literal: strings and date-times must be quoted, numbers and booleans bare, GUIDs
/// either way.
fn typed_value(raw: &RawValue, value_type: ValueType) -> Result<Value, ConditionError> {
    let converted = match (value_type, raw.quoted) {
        (ValueType::String, true) => Some(Value::Str { raw: raw.text.clone(), text: unescape(&raw.text) }),
        (ValueType::Guid, _) => parse_guid(&raw.text).map(Value::Guid),
        (ValueType::Int, false) => raw.text.parse().ok().map(Value::Int),
        (ValueType::Bool, false) => parse_bool(&raw.text).map(Value::Bool),
        (ValueType::DateTime, true) => crate::DateTime::parse(&raw.text).map(Value::DateTime),
        _ => None,
    };
    converted.ok_or_else(|| ConditionError {
        kind: ErrorKind::InvalidValue {
            value: if raw.quoted { format!("'{}'", raw.text) } else { raw.text.clone() },
            expected: value_type.describe(),
        },
        offset: raw.offset,
    })
}

/// Resolves backslash escapes.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    out
}
