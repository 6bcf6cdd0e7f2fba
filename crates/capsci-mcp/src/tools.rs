//! The tool catalogue: one MCP tool per granted method (one `computer_algebra` tool for all
//! granted SymPy operations, its `op` argument listing exactly those), input schemas generated
//! from the typed requests of `capsci_core::request`, compact output schemas, the translation
//! of tool arguments into a [`CallRequest`], and the one-line summary of an envelope.

use crate::workspace::{Workspace, WorkspaceError};
use capsci_core::request::{
    CasRequest, GoalsRequest, GpRequest, OptRequest, ProofRequest, SmtRequest,
};
use capsci_core::{
    CallRequest, Envelope, EvalStatus, Interface, Method, OptStatus, ProofStatus, SmtStatus,
};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The URI of the full envelope JSON Schema, served as an MCP resource.
pub const ENVELOPE_SCHEMA_URI: &str = "capsci://schema/envelope";

/// The URI prefix of artifacts served as MCP resources.
pub const ARTIFACT_URI_PREFIX: &str = "capsci://artifact/";

/// One tool of the catalogue, with the method(s) it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    /// `number_theory_eval`.
    NumberTheoryEval,
    /// `computer_algebra` (the operation is the `op` argument).
    ComputerAlgebra,
    /// `smt_solver_check`.
    SmtSolverCheck,
    /// `optimization_solver_solve`.
    OptimizationSolverSolve,
    /// `proof_checker_check`.
    ProofCheckerCheck,
    /// `proof_checker_goals`.
    ProofCheckerGoals,
}

impl ToolKind {
    /// Every tool, in catalogue order.
    pub const ALL: &'static [ToolKind] = &[
        ToolKind::NumberTheoryEval,
        ToolKind::ComputerAlgebra,
        ToolKind::SmtSolverCheck,
        ToolKind::OptimizationSolverSolve,
        ToolKind::ProofCheckerCheck,
        ToolKind::ProofCheckerGoals,
    ];

    /// The tool's MCP name (`<interface>_<method>` in snake case).
    pub fn name(self) -> &'static str {
        match self {
            ToolKind::NumberTheoryEval => "number_theory_eval",
            ToolKind::ComputerAlgebra => "computer_algebra",
            ToolKind::SmtSolverCheck => "smt_solver_check",
            ToolKind::OptimizationSolverSolve => "optimization_solver_solve",
            ToolKind::ProofCheckerCheck => "proof_checker_check",
            ToolKind::ProofCheckerGoals => "proof_checker_goals",
        }
    }

    /// The tool named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<ToolKind> {
        ToolKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The interface the tool calls.
    pub fn interface(self) -> Interface {
        match self {
            ToolKind::NumberTheoryEval => Interface::NumberTheory,
            ToolKind::ComputerAlgebra => Interface::ComputerAlgebra,
            ToolKind::SmtSolverCheck => Interface::SmtSolver,
            ToolKind::OptimizationSolverSolve => Interface::OptimizationSolver,
            ToolKind::ProofCheckerCheck | ToolKind::ProofCheckerGoals => Interface::ProofChecker,
        }
    }

    /// The methods of the interface this tool can reach.
    fn methods(self) -> &'static [Method] {
        match self {
            ToolKind::NumberTheoryEval => &[Method::Eval],
            ToolKind::ComputerAlgebra => Interface::ComputerAlgebra.methods(),
            ToolKind::SmtSolverCheck | ToolKind::ProofCheckerCheck => &[Method::Check],
            ToolKind::OptimizationSolverSolve => &[Method::Solve],
            ToolKind::ProofCheckerGoals => &[Method::Goals],
        }
    }

    fn description(self) -> &'static str {
        match self {
            ToolKind::NumberTheoryEval => {
                "Evaluate GP code with PARI/GP (sandboxed, recorded). Statuses: ok, error, refused, timeout, resource_exceeded, invalid_input, backend_error, cancelled."
            }
            ToolKind::ComputerAlgebra => {
                "A SymPy operation `op` on `expr` (sandboxed, recorded; input parsed without eval)."
            }
            ToolKind::SmtSolverCheck => {
                "Check SMT-LIB 2 text with Z3 and/or cvc5; a sat model is re-checked by capsci (evidence: checked)."
            }
            ToolKind::OptimizationSolverSolve => {
                "Solve an LP/MIP/QP given as MPS or CPLEX LP text with HiGHS; capsci re-checks the solution."
            }
            ToolKind::ProofCheckerCheck => {
                "Check a Rocq project (inline `files`) with the proof kernel; reports theorems, axioms and errors."
            }
            ToolKind::ProofCheckerGoals => "Show the proof goals of a Rocq file after line `line`.",
        }
    }

    /// The status words of this tool's method family, `cancelled` and `interrupted` included.
    fn statuses(self) -> Vec<&'static str> {
        match self {
            ToolKind::NumberTheoryEval | ToolKind::ComputerAlgebra => {
                EvalStatus::ALL.iter().map(|s| s.as_str()).collect()
            }
            ToolKind::SmtSolverCheck => SmtStatus::ALL.iter().map(|s| s.as_str()).collect(),
            ToolKind::OptimizationSolverSolve => {
                OptStatus::ALL.iter().map(|s| s.as_str()).collect()
            }
            ToolKind::ProofCheckerCheck | ToolKind::ProofCheckerGoals => {
                ProofStatus::ALL.iter().map(|s| s.as_str()).collect()
            }
        }
    }
}

/// The granted methods of one tool (for `computer_algebra`: the operations its `op` may name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedTool {
    /// The tool.
    pub kind: ToolKind,
    /// The granted methods it reaches, in catalogue order.
    pub methods: Vec<Method>,
}

/// The tools a grant's methods make visible: a tool is present iff at least one of its methods
/// is granted.
pub fn granted_tools(allowed: &[(Interface, Method)]) -> Vec<GrantedTool> {
    ToolKind::ALL
        .iter()
        .filter_map(|kind| {
            let methods: Vec<Method> = kind
                .methods()
                .iter()
                .copied()
                .filter(|m| allowed.contains(&(kind.interface(), *m)))
                .collect();
            (!methods.is_empty()).then_some(GrantedTool {
                kind: *kind,
                methods,
            })
        })
        .collect()
}

/// A JSON Schema for `T` with every subschema inlined and no `$schema`/`title` noise, so the
/// tool list stays small and self-contained.
fn compact_schema<T: JsonSchema>() -> Map<String, Value> {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match schema.to_value() {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    object.remove("$schema");
    object.remove("title");
    object.remove("description");
    object
}

/// Lets a proof tool take `path` (inside the workspace) instead of inline files.
fn add_path(schema: &mut Map<String, Value>, inline: &str, what: &str) {
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.insert(
            "path".into(),
            json!({"type": "string", "description": format!("{what} inside the server's workspace, instead of `{inline}`.")}),
        );
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| r != inline);
    }
}

/// The input schema of a tool, restricted to what the grant allows; with a workspace, the proof
/// tools also take `path`.
fn input_schema(tool: &GrantedTool, workspace: bool) -> Map<String, Value> {
    let mut schema = input_schema_inline(tool);
    if workspace {
        match tool.kind {
            ToolKind::ProofCheckerCheck => {
                add_path(&mut schema, "files", "A .v file or project directory")
            }
            ToolKind::ProofCheckerGoals => add_path(&mut schema, "file", "A .v file"),
            _ => {}
        }
    }
    schema
}

fn input_schema_inline(tool: &GrantedTool) -> Map<String, Value> {
    match tool.kind {
        ToolKind::NumberTheoryEval => compact_schema::<GpRequest>(),
        ToolKind::ComputerAlgebra => {
            let mut schema = compact_schema::<CasRequest>();
            if let Some(Value::Object(props)) = schema.get_mut("properties") {
                let ops: Vec<&str> = tool.methods.iter().map(|m| m.as_str()).collect();
                props.insert(
                    "op".into(),
                    json!({"type": "string", "enum": ops, "description": "The SymPy operation."}),
                );
            }
            schema
        }
        ToolKind::SmtSolverCheck => compact_schema::<SmtRequest>(),
        ToolKind::OptimizationSolverSolve => compact_schema::<OptRequest>(),
        ToolKind::ProofCheckerCheck => compact_schema::<ProofRequest>(),
        ToolKind::ProofCheckerGoals => compact_schema::<GoalsRequest>(),
    }
}

/// The compact output schema of a tool: the envelope's top-level shape with this method's
/// status vocabulary; the full schema is the resource [`ENVELOPE_SCHEMA_URI`].
fn output_schema(tool: &GrantedTool) -> Map<String, Value> {
    let schema = json!({
        "type": "object",
        "$comment": format!("capsci result envelope; full JSON Schema: resource {ENVELOPE_SCHEMA_URI}"),
        "required": ["job", "interface", "method", "status", "result", "evidence", "artifacts"],
        "properties": {
            "status": {"enum": tool.kind.statuses()},
            "evidence": {"enum": ["checked", "advisory"]},
            "result": {"type": "object"},
            "artifacts": {"type": "object"}
        }
    });
    match schema {
        Value::Object(object) => object,
        _ => Map::new(),
    }
}

/// The MCP tool definition of a granted tool (`workspace`: whether proof tools take `path`).
pub fn tool_definition(tool: &GrantedTool, workspace: bool) -> Tool {
    let annotations = ToolAnnotations::new()
        .read_only(true)
        .idempotent(false)
        .open_world(false);
    Tool::new(
        tool.kind.name(),
        tool.kind.description(),
        Arc::new(input_schema(tool, workspace)),
    )
    .with_raw_output_schema(Arc::new(output_schema(tool)))
    .with_annotations(annotations)
}

/// Why tool arguments could not become a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// The arguments do not match the tool's input schema.
    #[error("invalid arguments for {tool}: {source}")]
    Schema {
        /// The tool.
        tool: &'static str,
        /// What serde found wrong.
        source: serde_json::Error,
    },
    /// `path` was given but the server has no workspace.
    #[error("{tool}: `path` needs a workspace, and this server has none; send the files inline")]
    NoWorkspace {
        /// The tool.
        tool: &'static str,
    },
    /// `path` was given together with inline files, or is not a string.
    #[error("{tool}: give either `path` (a string) or `{inline}`, not both")]
    PathAndInline {
        /// The tool.
        tool: &'static str,
        /// The inline argument.
        inline: &'static str,
    },
    /// The path could not be used.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// `proof_checker_goals` needs exactly one `.v` file.
    #[error("proof_checker_goals: path {0:?} is not a single .v file")]
    NotOneFile(String),
}

/// Replaces a proof tool's `path` argument by the files it names in the workspace.
fn expand_path(
    kind: ToolKind,
    arguments: &mut JsonObject,
    workspace: Option<&Workspace>,
) -> Result<(), ArgumentError> {
    let inline = match kind {
        ToolKind::ProofCheckerCheck => "files",
        ToolKind::ProofCheckerGoals => "file",
        _ => return Ok(()),
    };
    let Some(path) = arguments.remove("path") else {
        return Ok(());
    };
    let tool = kind.name();
    let Some(workspace) = workspace else {
        return Err(ArgumentError::NoWorkspace { tool });
    };
    let (Value::String(path), false) = (path, arguments.contains_key(inline)) else {
        return Err(ArgumentError::PathAndInline { tool, inline });
    };
    let mut files = workspace.project(&path)?;
    let value = if kind == ToolKind::ProofCheckerGoals {
        if files.len() != 1 || !files[0].path.ends_with(".v") {
            return Err(ArgumentError::NotOneFile(path));
        }
        serde_json::to_value(files.remove(0))
    } else {
        serde_json::to_value(files)
    };
    let value = value.map_err(|source| ArgumentError::Schema { tool, source })?;
    arguments.insert(inline.into(), value);
    Ok(())
}

/// Turns a tool's arguments into the typed call request (a proof tool's `path` is read from the
/// workspace first).
pub fn call_request(
    kind: ToolKind,
    mut arguments: JsonObject,
    workspace: Option<&Workspace>,
) -> Result<CallRequest, ArgumentError> {
    expand_path(kind, &mut arguments, workspace)?;
    let value = Value::Object(arguments);
    let schema = |source| ArgumentError::Schema {
        tool: kind.name(),
        source,
    };
    Ok(match kind {
        ToolKind::NumberTheoryEval => {
            CallRequest::NumberTheoryEval(serde_json::from_value(value).map_err(schema)?)
        }
        ToolKind::ComputerAlgebra => {
            CallRequest::ComputerAlgebra(serde_json::from_value(value).map_err(schema)?)
        }
        ToolKind::SmtSolverCheck => {
            CallRequest::SmtCheck(serde_json::from_value(value).map_err(schema)?)
        }
        ToolKind::OptimizationSolverSolve => {
            CallRequest::OptSolve(serde_json::from_value(value).map_err(schema)?)
        }
        ToolKind::ProofCheckerCheck => {
            CallRequest::ProofCheck(serde_json::from_value(value).map_err(schema)?)
        }
        ToolKind::ProofCheckerGoals => {
            CallRequest::ProofGoals(serde_json::from_value(value).map_err(schema)?)
        }
    })
}

/// Longest result excerpt the one-line summary carries.
const EXCERPT_CHARS: usize = 160;

/// The one-line text summary of an envelope:
/// `sat (z3, evidence checked) job_... rec_...`, plus a short excerpt of the value where there is
/// one (`= 274177 * 67280421310721`).
pub fn summary(envelope: &Envelope, json: &Value) -> String {
    let evidence = json
        .get("evidence")
        .and_then(Value::as_str)
        .unwrap_or("advisory");
    let mut line = format!(
        "{} ({}, evidence {}) {}",
        envelope.status_word(),
        envelope.backend.name,
        evidence,
        envelope.job
    );
    if let Some(p) = &envelope.provenance {
        line.push(' ');
        line.push_str(&p.record);
    }
    let result = json.get("result");
    let excerpt = result
        .and_then(|r| r.get("value").or_else(|| r.get("text")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            result
                .and_then(|r| r.get("objective"))
                .filter(|o| !o.is_null())
                .map(|o| format!("objective {o}"))
        });
    if let Some(excerpt) = excerpt {
        let flat = excerpt.replace(['\n', '\r'], " ");
        let mut cut: String = flat.chars().take(EXCERPT_CHARS).collect();
        if cut.len() < flat.len() {
            cut.push('…');
        }
        line.push_str(": ");
        line.push_str(&cut);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Vec<(Interface, Method)> {
        Interface::ALL
            .iter()
            .flat_map(|i| i.methods().iter().map(move |m| (*i, *m)))
            .collect()
    }

    #[test]
    fn the_full_grant_lists_six_tools_and_one_cas_tool_with_every_op() {
        let tools = granted_tools(&full());
        assert_eq!(tools.len(), 6);
        let cas = tools
            .iter()
            .find(|t| t.kind == ToolKind::ComputerAlgebra)
            .expect("cas tool");
        assert_eq!(
            cas.methods.len(),
            Interface::ComputerAlgebra.methods().len()
        );
    }

    #[test]
    fn an_ungranted_method_has_no_tool_and_no_op() {
        let allowed = vec![
            (Interface::SmtSolver, Method::Check),
            (Interface::ComputerAlgebra, Method::Diff),
        ];
        let tools = granted_tools(&allowed);
        let names: Vec<&str> = tools.iter().map(|t| t.kind.name()).collect();
        assert_eq!(names, ["computer_algebra", "smt_solver_check"]);
        let schema = input_schema(&tools[0], false);
        assert_eq!(schema["properties"]["op"]["enum"], json!(["diff"]));
    }

    #[test]
    fn schemas_are_inlined_and_arguments_parse_in_the_cli_words() {
        let tools = granted_tools(&full());
        for tool in &tools {
            let text = serde_json::to_string(&input_schema(tool, true)).expect("json");
            assert!(
                !text.contains("$ref"),
                "{} schema has a $ref",
                tool.kind.name()
            );
            assert!(
                !text.contains("$defs"),
                "{} schema has $defs",
                tool.kind.name()
            );
        }
        let args = json!({"smtlib": "(check-sat)", "backend": "cvc5", "timeout_s": 2.0});
        let Value::Object(args) = args else {
            panic!("object")
        };
        let request = call_request(ToolKind::SmtSolverCheck, args, None).expect("parse");
        assert_eq!(request.interface(), Interface::SmtSolver);
    }

    #[test]
    fn misspelt_arguments_are_refused() {
        let Value::Object(args) = json!({"expr": "1+1", "tiemout_s": 3}) else {
            panic!("object")
        };
        let error = call_request(ToolKind::NumberTheoryEval, args, None).expect_err("refused");
        assert!(error.to_string().contains("tiemout_s"), "{error}");
    }

    #[test]
    fn path_needs_a_workspace_and_excludes_inline_files() {
        let Value::Object(args) = json!({"path": "A.v"}) else {
            panic!("object")
        };
        let error = call_request(ToolKind::ProofCheckerCheck, args, None).expect_err("refused");
        assert!(
            matches!(error, ArgumentError::NoWorkspace { .. }),
            "{error}"
        );
        let tools = granted_tools(&full());
        let check = tools
            .iter()
            .find(|t| t.kind == ToolKind::ProofCheckerCheck)
            .expect("check");
        let with = input_schema(check, true);
        assert!(with["properties"].get("path").is_some());
        assert!(!with["required"]
            .as_array()
            .expect("required")
            .contains(&json!("files")));
        assert!(input_schema(check, false)["properties"]
            .get("path")
            .is_none());
    }
}
