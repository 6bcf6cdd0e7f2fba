//! The HiGHS solve worker: reads one model file (MPS free/fixed or CPLEX LP, by extension), solves
//! it with the given options, and reports everything capsci needs to re-check the answer as one
//! JSON document ([`Report`]).
//!
//! This crate is the only one that links HiGHS. It runs inside capsci's sandbox as the binary
//! `capsci-highs-worker`; the same [`solve_file`] is what the benchmark calls in-process.
//!
//! Unsafe code: the safe `highs` crate cannot read a model file nor give the model back, so a few
//! `highs-sys` C calls are made on the `highs::Model`'s own handle, each in an audited block.

use highs::{HighsModelStatus, Model, RowProblem};
use serde::Serialize;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::path::Path;
use std::time::Instant;

/// Options of one solve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolveOptions {
    /// Time limit, seconds.
    pub time_limit: Option<f64>,
    /// MIP relative gap at which to stop.
    pub mip_rel_gap: Option<f64>,
    /// Threads HiGHS may use.
    pub threads: Option<u32>,
    /// Random seed.
    pub random_seed: Option<u32>,
    /// Presolve on or off.
    pub presolve: Option<bool>,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            time_limit: None,
            mip_rel_gap: None,
            threads: Some(1),
            random_seed: None,
            presolve: None,
        }
    }
}

/// The model as HiGHS read it: enough for capsci to recompute every bound, row and objective.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelData {
    /// `minimize` or `maximize`.
    pub sense: String,
    /// Constant term of the objective.
    pub offset: f64,
    /// Column names (HiGHS gives `c0`, `c1`, ... when the file has none).
    pub col_names: Vec<String>,
    /// Row names.
    pub row_names: Vec<String>,
    /// Objective coefficient per column.
    pub col_cost: Vec<f64>,
    /// Lower bound per column (`null` for minus infinity).
    pub col_lower: Vec<Option<f64>>,
    /// Upper bound per column (`null` for plus infinity).
    pub col_upper: Vec<Option<f64>>,
    /// Lower bound per row (`null` for minus infinity).
    pub row_lower: Vec<Option<f64>>,
    /// Upper bound per row (`null` for plus infinity).
    pub row_upper: Vec<Option<f64>>,
    /// Column-wise matrix: start of each column in `a_index`/`a_value`, plus the end.
    pub a_start: Vec<i64>,
    /// Row index of each nonzero.
    pub a_index: Vec<i64>,
    /// Value of each nonzero.
    pub a_value: Vec<f64>,
    /// Integrality per column: 0 continuous, 1 integer, 2 semi-continuous, 3 semi-integer.
    pub integrality: Vec<i64>,
    /// Hessian (lower triangle, column-wise) for QPs: starts, indices, values; empty for LP/MIP.
    pub q_start: Vec<i64>,
    /// Hessian row indices.
    pub q_index: Vec<i64>,
    /// Hessian values.
    pub q_value: Vec<f64>,
}

/// The worker's one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// `ok`, or `read_error` / `option_error` / `solve_error` when HiGHS failed before answering.
    pub outcome: String,
    /// HiGHS model status as text (`Optimal`, `Infeasible`, `Time limit reached`, ...).
    pub model_status: String,
    /// HiGHS model status code (`kHighsModelStatus*`).
    pub model_status_code: i64,
    /// Primal solution status code (0 none, 1 infeasible point, 2 feasible).
    pub primal_solution_status: i64,
    /// Dual solution status code.
    pub dual_solution_status: i64,
    /// Objective value HiGHS reports.
    pub objective: Option<f64>,
    /// MIP dual bound.
    pub mip_dual_bound: Option<f64>,
    /// MIP relative gap.
    pub mip_gap: Option<f64>,
    /// Branch-and-bound nodes.
    pub mip_node_count: Option<i64>,
    /// Simplex iterations.
    pub simplex_iterations: Option<i64>,
    /// Interior-point iterations.
    pub ipm_iterations: Option<i64>,
    /// QP iterations.
    pub qp_iterations: Option<i64>,
    /// Primal column values.
    pub col_value: Vec<f64>,
    /// Column duals (reduced costs).
    pub col_dual: Vec<f64>,
    /// Row activities.
    pub row_value: Vec<f64>,
    /// Row duals.
    pub row_dual: Vec<f64>,
    /// The model as HiGHS read it.
    pub model: Option<ModelData>,
    /// Seconds HiGHS spent in `run` (the in-process solve time).
    pub solve_seconds: f64,
    /// HiGHS's log lines (errors and warnings included).
    pub log: Vec<String>,
    /// What failed, when `outcome` is not `ok`.
    pub message: Option<String>,
}

/// HiGHS's value for infinity; bounds at or beyond it are reported as `null`.
const INF: f64 = 1e30;

fn finite(x: f64) -> Option<f64> {
    if x.abs() >= INF || x.is_infinite() {
        None
    } else {
        Some(x)
    }
}

fn status_text(status: HighsModelStatus) -> (&'static str, i64) {
    match status {
        HighsModelStatus::NotSet => ("Not set", 0),
        HighsModelStatus::LoadError => ("Load error", 1),
        HighsModelStatus::ModelError => ("Model error", 2),
        HighsModelStatus::PresolveError => ("Presolve error", 3),
        HighsModelStatus::SolveError => ("Solve error", 4),
        HighsModelStatus::PostsolveError => ("Postsolve error", 5),
        HighsModelStatus::ModelEmpty => ("Empty", 6),
        HighsModelStatus::Optimal => ("Optimal", 7),
        HighsModelStatus::Infeasible => ("Infeasible", 8),
        HighsModelStatus::UnboundedOrInfeasible => ("Primal infeasible or unbounded", 9),
        HighsModelStatus::Unbounded => ("Unbounded", 10),
        HighsModelStatus::ObjectiveBound => ("Bound on objective reached", 11),
        HighsModelStatus::ObjectiveTarget => ("Target for objective reached", 12),
        HighsModelStatus::ReachedTimeLimit => ("Time limit reached", 13),
        HighsModelStatus::ReachedIterationLimit => ("Iteration limit reached", 14),
        HighsModelStatus::Unknown => ("Unknown", 15),
        _ => ("Other", -1),
    }
}

/// Reads `path` and solves it. `log_path` is where HiGHS writes its log (read back into the
/// report). Never panics on bad input: a file HiGHS cannot read is `outcome: read_error` with its
/// log.
pub fn solve_file(path: &Path, options: &SolveOptions, log_path: &Path) -> Report {
    let mut report = Report::default();
    let mut model = Model::new(RowProblem::default());
    let log = log_path.to_string_lossy().into_owned();
    let mut option_errors = Vec::new();
    let mut set = |model: &mut Model, name: &str, value: OptionValue| {
        let ok = match value {
            OptionValue::Bool(b) => model.try_set_option(name, b).is_ok(),
            OptionValue::Int(i) => model.try_set_option(name, i).is_ok(),
            OptionValue::Float(f) => model.try_set_option(name, f).is_ok(),
            OptionValue::Str(s) => model.try_set_option(name, s.as_str()).is_ok(),
        };
        if !ok {
            option_errors.push(name.to_string());
        }
    };
    set(&mut model, "log_to_console", OptionValue::Bool(false));
    set(&mut model, "output_flag", OptionValue::Bool(true));
    set(&mut model, "log_file", OptionValue::Str(log.clone()));
    if let Some(t) = options.time_limit {
        set(&mut model, "time_limit", OptionValue::Float(t));
    }
    if let Some(g) = options.mip_rel_gap {
        set(&mut model, "mip_rel_gap", OptionValue::Float(g));
    }
    if let Some(t) = options.threads {
        set(
            &mut model,
            "threads",
            OptionValue::Int(i32::try_from(t).unwrap_or(1)),
        );
    }
    if let Some(s) = options.random_seed {
        set(
            &mut model,
            "random_seed",
            OptionValue::Int(i32::try_from(s).unwrap_or(0)),
        );
    }
    if let Some(p) = options.presolve {
        set(
            &mut model,
            "presolve",
            OptionValue::Str(if p { "on".into() } else { "off".into() }),
        );
    }
    if !option_errors.is_empty() {
        report.outcome = "option_error".into();
        report.message = Some(format!(
            "HiGHS rejected option(s): {}",
            option_errors.join(", ")
        ));
        report.log = read_log(log_path);
        return report;
    }
    let Ok(c_path) = CString::new(path.to_string_lossy().as_bytes()) else {
        report.outcome = "read_error".into();
        report.message = Some("model path contains a NUL byte".into());
        return report;
    };
    // SAFETY: `model.as_mut_ptr()` is the live Highs handle owned by `model`, which outlives the
    // call; `c_path` is a NUL-terminated string that lives until the end of this function.
    #[allow(unsafe_code)]
    let read_status = unsafe { highs_sys::Highs_readModel(model.as_mut_ptr(), c_path.as_ptr()) };
    if read_status == highs_sys::kHighsStatusError {
        report.outcome = "read_error".into();
        report.message = Some(format!("HiGHS could not read {}", path.display()));
        report.log = read_log(log_path);
        return report;
    }
    report.model = Some(model_data(&mut model));
    let started = Instant::now();
    let solved = match model.try_solve() {
        Ok(solved) => solved,
        Err(status) => {
            report.solve_seconds = started.elapsed().as_secs_f64();
            report.outcome = "solve_error".into();
            report.message = Some(format!("HiGHS run failed: {status:?}"));
            report.log = read_log(log_path);
            return report;
        }
    };
    report.solve_seconds = started.elapsed().as_secs_f64();
    let (text, code) = status_text(solved.status());
    report.outcome = "ok".into();
    report.model_status = text.into();
    report.model_status_code = code;
    let int_info = |name: &CStr| solved.int_info_value(name).ok();
    let double_info = |name: &CStr| solved.double_info_value(name).ok();
    report.primal_solution_status = int_info(c"primal_solution_status").unwrap_or(0);
    report.dual_solution_status = int_info(c"dual_solution_status").unwrap_or(0);
    report.objective = double_info(c"objective_function_value");
    report.mip_dual_bound = double_info(c"mip_dual_bound");
    report.mip_gap = double_info(c"mip_gap");
    report.mip_node_count = mip_node_count(&solved);
    report.simplex_iterations = int_info(c"simplex_iteration_count");
    report.ipm_iterations = int_info(c"ipm_iteration_count");
    report.qp_iterations = int_info(c"qp_iteration_count");
    let solution = solved.get_solution();
    report.col_value = solution.columns().to_vec();
    report.col_dual = solution.dual_columns().to_vec();
    report.row_value = solution.rows().to_vec();
    report.row_dual = solution.dual_rows().to_vec();
    report.log = read_log(log_path);
    report
}

enum OptionValue {
    Bool(bool),
    Int(i32),
    Float(f64),
    Str(String),
}

fn mip_node_count(solved: &highs::SolvedModel) -> Option<i64> {
    let mut value: i64 = 0;
    // SAFETY: the handle belongs to `solved`, alive for the call; `value` is a valid i64 out slot
    // and `mip_node_count` is an int64 info item, which `Highs_getInt64InfoValue` writes.
    #[allow(unsafe_code)]
    let status = unsafe {
        highs_sys::Highs_getInt64InfoValue(solved.as_ptr(), c"mip_node_count".as_ptr(), &mut value)
    };
    (status != highs_sys::kHighsStatusError).then_some(value)
}

fn read_log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn name_of(model: &mut Model, row: bool, index: i32) -> String {
    let mut buffer = vec![0 as c_char; 1024];
    let handle = model.as_mut_ptr();
    // SAFETY: `handle` is the live Highs handle; `buffer` has 1024 bytes, more than
    // `kHighsMaximumStringLength` (512) that HiGHS writes at most, NUL included.
    #[allow(unsafe_code)]
    let status = unsafe {
        if row {
            highs_sys::Highs_getRowName(handle, index, buffer.as_mut_ptr())
        } else {
            highs_sys::Highs_getColName(handle, index, buffer.as_mut_ptr())
        }
    };
    let fallback = if row {
        format!("r{index}")
    } else {
        format!("c{index}")
    };
    if status == highs_sys::kHighsStatusError {
        return fallback;
    }
    let bytes: Vec<u8> = buffer
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let name = String::from_utf8_lossy(&bytes).into_owned();
    if name.is_empty() {
        fallback
    } else {
        name
    }
}

fn model_data(model: &mut Model) -> ModelData {
    let handle = model.as_mut_ptr();
    // SAFETY: `handle` is the live Highs handle; these are plain size queries.
    #[allow(unsafe_code)]
    let (num_col, num_row, num_nz, q_nz) = unsafe {
        (
            highs_sys::Highs_getNumCol(handle),
            highs_sys::Highs_getNumRow(handle),
            highs_sys::Highs_getNumNz(handle),
            highs_sys::Highs_getHessianNumNz(handle),
        )
    };
    let n = usize::try_from(num_col).unwrap_or(0);
    let m = usize::try_from(num_row).unwrap_or(0);
    let nz = usize::try_from(num_nz).unwrap_or(0);
    let qnz = usize::try_from(q_nz).unwrap_or(0);
    let (mut out_col, mut out_row, mut out_nz, mut out_qnz, mut sense) = (0, 0, 0, 0, 1);
    let mut offset = 0.0;
    let mut col_cost = vec![0.0; n];
    let mut col_lower = vec![0.0; n];
    let mut col_upper = vec![0.0; n];
    let mut row_lower = vec![0.0; m];
    let mut row_upper = vec![0.0; m];
    let mut a_start = vec![0; n + 1];
    let mut a_index = vec![0; nz.max(1)];
    let mut a_value = vec![0.0; nz.max(1)];
    let mut q_start = vec![0; n + 1];
    let mut q_index = vec![0; qnz.max(1)];
    let mut q_value = vec![0.0; qnz.max(1)];
    let mut integrality = vec![0; n.max(1)];
    // SAFETY: every array is allocated to the size HiGHS documents for `Highs_getModel` (num_col,
    // num_row, num_nz, hessian_num_nz as queried just above, +1 for the start arrays); the scalar
    // outputs are valid locals; `handle` is live.
    #[allow(unsafe_code)]
    let status = unsafe {
        highs_sys::Highs_getModel(
            handle,
            highs_sys::kHighsMatrixFormatColwise,
            highs_sys::kHighsHessianFormatTriangular,
            &mut out_col,
            &mut out_row,
            &mut out_nz,
            &mut out_qnz,
            &mut sense,
            &mut offset,
            col_cost.as_mut_ptr(),
            col_lower.as_mut_ptr(),
            col_upper.as_mut_ptr(),
            row_lower.as_mut_ptr(),
            row_upper.as_mut_ptr(),
            a_start.as_mut_ptr(),
            a_index.as_mut_ptr(),
            a_value.as_mut_ptr(),
            q_start.as_mut_ptr(),
            q_index.as_mut_ptr(),
            q_value.as_mut_ptr(),
            integrality.as_mut_ptr(),
        )
    };
    if status == highs_sys::kHighsStatusError {
        return ModelData::default();
    }
    a_start[n] = out_nz;
    a_index.truncate(usize::try_from(out_nz).unwrap_or(0));
    a_value.truncate(usize::try_from(out_nz).unwrap_or(0));
    let q_len = usize::try_from(out_qnz).unwrap_or(0);
    q_index.truncate(q_len);
    q_value.truncate(q_len);
    if q_len == 0 {
        q_start.clear();
    } else {
        q_start[n] = out_qnz;
    }
    integrality.truncate(n);
    let col_names = (0..num_col).map(|j| name_of(model, false, j)).collect();
    let row_names = (0..num_row).map(|i| name_of(model, true, i)).collect();
    ModelData {
        sense: if sense == highs_sys::kHighsObjSenseMaximize {
            "maximize".into()
        } else {
            "minimize".into()
        },
        offset,
        col_names,
        row_names,
        col_cost,
        col_lower: col_lower.into_iter().map(finite).collect(),
        col_upper: col_upper.into_iter().map(finite).collect(),
        row_lower: row_lower.into_iter().map(finite).collect(),
        row_upper: row_upper.into_iter().map(finite).collect(),
        a_start: a_start.into_iter().map(i64::from).collect(),
        a_index: a_index.into_iter().map(i64::from).collect(),
        a_value,
        integrality: integrality.into_iter().map(i64::from).collect(),
        q_start: q_start.into_iter().map(i64::from).collect(),
        q_index: q_index.into_iter().map(i64::from).collect(),
        q_value,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn solve_text(name: &str, text: &str) -> Report {
        let dir = std::env::temp_dir().join(format!(
            "capsci-highs-worker-test-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let report = solve_file(&path, &SolveOptions::default(), &dir.join("highs.log"));
        std::fs::remove_dir_all(&dir).unwrap();
        report
    }

    #[test]
    fn reports_solution_duals_and_the_model_as_read() {
        let r = solve_text("m.lp", "Maximize\n obj: 3 x + 2 y + 1\nSubject To\n a: x + y <= 4\nBounds\n x <= 3\nGeneral\nEnd\n");
        assert_eq!(r.outcome, "ok");
        assert_eq!(r.model_status, "Optimal");
        assert_eq!(r.objective, Some(12.0));
        assert_eq!(r.col_value, vec![3.0, 1.0]);
        assert_eq!(r.row_dual.len(), 1);
        let m = r.model.unwrap();
        assert_eq!(m.sense, "maximize");
        assert_eq!(m.offset, 1.0);
        assert_eq!(m.col_names, vec!["x", "y"]);
        assert_eq!(m.col_upper, vec![Some(3.0), None]);
        assert_eq!(m.row_upper, vec![Some(4.0)]);
        assert_eq!(m.row_lower, vec![None]);
        assert_eq!(m.a_start, vec![0, 1, 2]);
        assert!(m.q_value.is_empty());
    }

    #[test]
    fn an_unreadable_model_is_a_read_error_with_highs_log() {
        let r = solve_text("bad.mps", "NAME x\nROWS\n N obj\nnot a row line\n");
        assert_eq!(r.outcome, "read_error");
        assert!(r.log.iter().any(|l| l.starts_with("ERROR")), "{:?}", r.log);
        assert!(r.model.is_none());
    }
}
