//! Kubernetes' CEL environment: the expressions of CustomResourceDefinitions'
//! `x-kubernetes-validations` rules and of ValidatingAdmissionPolicy, compiled once and evaluated
//! over JSON with upstream's libraries, cost limits and error messages.
//!
//! [`Validator`] compiles every rule of a structural schema and runs them on a write, with
//! `self` and `oldSelf` bound as upstream binds them. [`Program`] is one expression over named
//! JSON variables (`object`, `oldObject`, `request`, `params`, `namespaceObject`, `variables`),
//! for admission policies and match conditions.
//!
//! The interpreter underneath (the `cel` crate) is dynamically typed. CRD rules are also checked
//! against their schema when compiled, as cel-go does with the schema's declared types: a field
//! the schema does not declare, or an operator applied to types it has no overload for, is a
//! [`CompileError::Check`]. That check is conservative (whatever it cannot type precisely
//! passes), so other type errors cel-go reports when compiling (a rule that is not a `bool`)
//! show up here when evaluating. Admission-policy expressions have no schema and are not
//! type-checked. It knows nothing of HTTP, the store or admission plumbing: pure functions over
//! `serde_json::Value` and k8s-openapi schema types.

mod cost;
mod library;
mod program;
mod typecheck;
mod validator;

pub use program::{CompileError, EvalError, Outcome, Program};
pub use validator::Validator;

/// The most one expression may cost in one evaluation (upstream `PerCallLimit`).
pub const PER_CALL_LIMIT: u64 = 1_000_000;
/// The cost budget of all rules of one object (upstream `RuntimeCELCostBudget`).
pub const RUNTIME_CEL_COST_BUDGET: u64 = 10_000_000;
/// The most one rule may cost by static estimate, times how often it can run (upstream
/// `StaticEstimatedCostLimit`).
pub const STATIC_ESTIMATED_COST_LIMIT: u64 = 10_000_000;
/// The most all rules of one schema may cost together by static estimate (upstream
/// `StaticEstimatedCRDCostLimit`).
pub const STATIC_ESTIMATED_CRD_COST_LIMIT: u64 = 100_000_000;
/// The largest request the API server accepts, which bounds unbounded lists, maps and strings.
pub const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;
/// The longest message a `messageExpression` may produce (upstream
/// `MaxEvaluatedMessageExpressionSizeBytes`).
pub const MAX_EVALUATED_MESSAGE_EXPRESSION_SIZE_BYTES: usize = 5 * 1024;
