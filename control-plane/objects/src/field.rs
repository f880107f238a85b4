//! Field errors: what validation finds, in upstream's words.
//!
//! Mirrors `k8s.io/apimachinery/pkg/util/validation/field`: an error names the field by its path
//! (`spec.containers[0].name`), its type decides the `reason` of the `StatusCause` the API server
//! returns, and its text is what kubectl prints.

use std::fmt;

use serde_json::Value;

/// A path to a field, printed as upstream does: `spec.containers[0].ports[1].containerPort`,
/// map keys as `metadata.labels[app]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// The path of a top-level field.
    pub fn new(name: &str) -> Self {
        Path(name.to_owned())
    }

    /// The path of a child field.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_owned())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// The path of a list element.
    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// The path of a map entry.
    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with a field (upstream's `field.ErrorType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// The field is needed and missing.
    Required,
    /// The value is malformed or out of range.
    Invalid,
    /// The value is of the wrong type (upstream's `field.TypeInvalid`, which custom resources'
    /// schemas report); it reads as "Invalid value" too, with its own reason.
    TypeInvalid,
    /// The value is not one of the supported ones.
    NotSupported(Vec<String>),
    /// The value repeats another one that must be unique.
    Duplicate,
    /// The field may not be set (in this context).
    Forbidden,
    /// The value is longer than `max`.
    TooLong { max: usize },
    /// The list has more than `max` items.
    TooMany { max: usize },
    /// A referenced object was not found.
    NotFound,
    /// The server failed while validating.
    Internal,
}

impl ErrorType {
    /// The `StatusCause.reason` upstream uses for this type.
    pub fn reason(&self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::NotSupported(_) => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong { .. } => "FieldValueTooLong",
            ErrorType::TooMany { .. } => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Internal => "InternalError",
        }
    }
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: ErrorType,
    /// Where.
    pub field: Path,
    /// The offending value, when upstream prints it.
    pub value: Option<Value>,
    /// Further explanation; may be empty.
    pub detail: String,
}

impl FieldError {
    /// `field: Required value`.
    pub fn required(field: Path, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Required,
            field,
            value: None,
            detail: detail.into(),
        }
    }

    /// `field: Invalid value: <value>: detail`.
    pub fn invalid(field: Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Invalid,
            field,
            value: Some(value.into()),
            detail: detail.into(),
        }
    }

    /// `field: Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: Path, value: impl Into<Value>, supported: &[&str]) -> Self {
        FieldError {
            kind: ErrorType::NotSupported(supported.iter().map(|s| (*s).to_owned()).collect()),
            field,
            value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// `field: Duplicate value: <value>`.
    pub fn duplicate(field: Path, value: impl Into<Value>) -> Self {
        FieldError {
            kind: ErrorType::Duplicate,
            field,
            value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// `field: Forbidden: detail`.
    pub fn forbidden(field: Path, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Forbidden,
            field,
            value: None,
            detail: detail.into(),
        }
    }

    /// `field: Too long: may not be more than <max> bytes`.
    pub fn too_long(field: Path, max: usize) -> Self {
        FieldError {
            kind: ErrorType::TooLong { max },
            field,
            value: None,
            detail: String::new(),
        }
    }

    /// `field: Too many: <n>: must have at most <max> items`.
    pub fn too_many(field: Path, actual: usize, max: usize) -> Self {
        FieldError {
            kind: ErrorType::TooMany { max },
            field,
            value: Some(Value::from(actual)),
            detail: String::new(),
        }
    }

    /// The text after `field: `, as upstream's `ErrorBody`.
    pub fn body(&self) -> String {
        let value = self.value.as_ref().map(render_value);
        let mut s = match &self.kind {
            ErrorType::Required => "Required value".to_owned(),
            ErrorType::Invalid | ErrorType::TypeInvalid => match &value {
                Some(v) => format!("Invalid value: {v}"),
                None => "Invalid value".to_owned(),
            },
            ErrorType::NotSupported(supported) => {
                let mut s = match &value {
                    Some(v) => format!("Unsupported value: {v}"),
                    None => "Unsupported value".to_owned(),
                };
                if !supported.is_empty() {
                    let list: Vec<String> = supported.iter().map(|v| format!("{v:?}")).collect();
                    s.push_str(&format!(": supported values: {}", list.join(", ")));
                }
                s
            }
            ErrorType::Duplicate => match &value {
                Some(v) => format!("Duplicate value: {v}"),
                None => "Duplicate value".to_owned(),
            },
            ErrorType::Forbidden => "Forbidden".to_owned(),
            ErrorType::TooLong { max } => format!("Too long: may not be more than {max} bytes"),
            ErrorType::TooMany { max } => match &value {
                Some(v) => format!("Too many: {v}: must have at most {max} items"),
                None => format!("Too many: must have at most {max} items"),
            },
            ErrorType::NotFound => match &value {
                Some(v) => format!("Not found: {v}"),
                None => "Not found".to_owned(),
            },
            ErrorType::Internal => "Internal error".to_owned(),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// Values print as Go's `%q` for strings and as plain JSON otherwise.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Several field errors, printed as upstream's aggregate: one error alone, several in brackets.
pub fn aggregate_message(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream() {
        let containers = Path::new("spec").child("containers");
        let e = FieldError::required(containers.index(0).child("name"), "");
        assert_eq!(e.to_string(), "spec.containers[0].name: Required value");
        let e = FieldError::invalid(
            Path::new("metadata").child("name"),
            "Bad_Name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        );
        assert_eq!(
            e.to_string(),
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
        );
        let e = FieldError::not_supported(
            Path::new("spec").child("restartPolicy"),
            "Sometimes",
            &["Always", "Never", "OnFailure"],
        );
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\""
        );
        assert_eq!(e.kind.reason(), "FieldValueNotSupported");
        assert_eq!(
            Path::new("metadata").child("labels").key("app").as_str(),
            "metadata.labels[app]"
        );
        let two = [
            FieldError::required(Path::new("a"), ""),
            FieldError::required(Path::new("b"), ""),
        ];
        assert_eq!(
            aggregate_message(&two),
            "[a: Required value, b: Required value]"
        );
    }
}
