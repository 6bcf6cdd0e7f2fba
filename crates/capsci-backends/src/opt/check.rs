//! capsci's own re-check of an optimisation answer, from the model as HiGHS read it.
//!
//! Tolerances (all relative, documented for users):
//! - primal: a bound or row violation counts as `max(0, lo - v, v - hi) / (1 + |bound|)`; the
//!   solution is feasible when the largest is at most [`FEAS_TOL`];
//! - integrality: `|x - round(x)|` at most [`INT_TOL`] (semi-continuous/semi-integer columns may
//!   also be 0);
//! - dual (LP and convex QP): reduced costs recomputed as `d = c + Qx - Aᵀy` from the returned row
//!   duals, sign-checked against which bounds are finite, each violation scaled by `1 + |c_j|`
//!   (`1 + |y_i|` for rows) and at most [`DUAL_TOL`];
//! - duality gap: `|primal - dual| / (1 + |primal|)` at most [`GAP_TOL`], where the dual objective
//!   takes each dual's bound by its sign (minus `½xᵀQx` for QPs);
//! - objective: capsci's recomputed objective equals the reported one within [`GAP_TOL`] relative.

use serde::Deserialize;

/// Primal feasibility tolerance (relative).
pub const FEAS_TOL: f64 = 1e-6;
/// Integrality tolerance (absolute).
pub const INT_TOL: f64 = 1e-6;
/// Dual feasibility tolerance (relative).
pub const DUAL_TOL: f64 = 1e-6;
/// Duality gap and objective agreement tolerance (relative).
pub const GAP_TOL: f64 = 1e-6;

/// The model as the worker reports HiGHS read it (mirror of the worker's `ModelData`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelData {
    /// `minimize` or `maximize`.
    pub sense: String,
    /// Objective constant.
    pub offset: f64,
    /// Column names.
    pub col_names: Vec<String>,
    /// Row names.
    pub row_names: Vec<String>,
    /// Objective coefficients.
    pub col_cost: Vec<f64>,
    /// Column lower bounds (`None` = -inf).
    pub col_lower: Vec<Option<f64>>,
    /// Column upper bounds (`None` = +inf).
    pub col_upper: Vec<Option<f64>>,
    /// Row lower bounds.
    pub row_lower: Vec<Option<f64>>,
    /// Row upper bounds.
    pub row_upper: Vec<Option<f64>>,
    /// Column starts (column-wise matrix), length n+1.
    pub a_start: Vec<i64>,
    /// Row indices of nonzeros.
    pub a_index: Vec<i64>,
    /// Nonzero values.
    pub a_value: Vec<f64>,
    /// Integrality per column (0 continuous, 1 integer, 2 semi-continuous, 3 semi-integer).
    pub integrality: Vec<i64>,
    /// Hessian column starts (lower triangle), empty without a Hessian.
    pub q_start: Vec<i64>,
    /// Hessian row indices.
    pub q_index: Vec<i64>,
    /// Hessian values.
    pub q_value: Vec<f64>,
}

impl ModelData {
    /// Whether any column is integer or semi-continuous.
    pub fn is_mip(&self) -> bool {
        self.integrality.iter().any(|&k| k != 0)
    }

    /// Whether the objective has a quadratic part.
    pub fn is_qp(&self) -> bool {
        !self.q_value.is_empty()
    }

    fn sign(&self) -> f64 {
        if self.sense == "maximize" {
            -1.0
        } else {
            1.0
        }
    }

    fn n(&self) -> usize {
        self.col_cost.len()
    }

    /// Whether the arrays agree in size (a malformed report is not re-checked).
    pub fn consistent(&self) -> bool {
        let n = self.n();
        let m = self.row_lower.len();
        let nz = self.a_value.len();
        self.col_lower.len() == n
            && self.col_upper.len() == n
            && self.row_upper.len() == m
            && self.a_start.len() == n + 1
            && self.a_index.len() == nz
            && self
                .a_index
                .iter()
                .all(|&i| usize::try_from(i).is_ok_and(|i| i < m))
            && self.a_start.windows(2).all(|w| w[0] <= w[1])
            && self
                .a_start
                .last()
                .is_some_and(|&e| usize::try_from(e).is_ok_and(|e| e == nz))
            && (self.integrality.is_empty() || self.integrality.len() == n)
            && (self.q_value.is_empty()
                || (self.q_start.len() == n + 1
                    && self.q_index.len() == self.q_value.len()
                    && self
                        .q_index
                        .iter()
                        .all(|&i| usize::try_from(i).is_ok_and(|i| i < n))))
    }

    fn column(&self, j: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let start = usize::try_from(self.a_start[j]).unwrap_or(0);
        let end = usize::try_from(self.a_start[j + 1]).unwrap_or(0);
        (start..end).map(move |k| {
            (
                usize::try_from(self.a_index[k]).unwrap_or(0),
                self.a_value[k],
            )
        })
    }

    /// Row activities `A x`, recomputed.
    pub fn activities(&self, x: &[f64]) -> Vec<f64> {
        let mut r = vec![0.0; self.row_lower.len()];
        for (j, &xj) in x.iter().enumerate().take(self.n()) {
            for (i, a) in self.column(j) {
                r[i] += a * xj;
            }
        }
        r
    }

    /// `Q x` with the full symmetric Q from its lower triangle.
    pub fn hessian_times(&self, x: &[f64]) -> Vec<f64> {
        let n = self.n();
        let mut qx = vec![0.0; n];
        if self.q_value.is_empty() {
            return qx;
        }
        for j in 0..n {
            let start = usize::try_from(self.q_start[j]).unwrap_or(0);
            let end = usize::try_from(self.q_start[j + 1]).unwrap_or(0);
            for k in start..end {
                let i = usize::try_from(self.q_index[k]).unwrap_or(0);
                let v = self.q_value[k];
                qx[i] += v * x[j];
                if i != j {
                    qx[j] += v * x[i];
                }
            }
        }
        qx
    }

    /// The objective `cᵀx + ½xᵀQx + offset`, recomputed.
    pub fn objective(&self, x: &[f64]) -> f64 {
        let linear: f64 = self.col_cost.iter().zip(x).map(|(c, v)| c * v).sum();
        let qx = self.hessian_times(x);
        let quad: f64 = qx.iter().zip(x).map(|(a, b)| a * b).sum::<f64>() * 0.5;
        linear + quad + self.offset
    }
}

/// What capsci found re-checking one solution.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimalCheck {
    /// Largest scaled violation of a column bound, a row or integrality.
    pub max_violation: f64,
    /// Where it is (`column X01 upper bound`, `row R09`, ...), if any violation is positive.
    pub worst: Option<String>,
    /// The recomputed objective.
    pub objective: f64,
}

impl PrimalCheck {
    /// Whether the solution is feasible within the tolerances.
    pub fn feasible(&self) -> bool {
        self.max_violation <= FEAS_TOL
    }
}

fn violation(value: f64, lower: Option<f64>, upper: Option<f64>) -> f64 {
    let mut v: f64 = 0.0;
    if let Some(lo) = lower {
        v = v.max((lo - value) / (1.0 + lo.abs()));
    }
    if let Some(hi) = upper {
        v = v.max((value - hi) / (1.0 + hi.abs()));
    }
    v
}

/// Checks bounds, integrality and every row's activity (recomputed from the matrix).
pub fn check_primal(model: &ModelData, x: &[f64]) -> PrimalCheck {
    let mut worst: Option<String> = None;
    let mut max: f64 = 0.0;
    let mut note = |v: f64, what: String, max: &mut f64| {
        if v > *max {
            *max = v;
            worst = Some(what);
        }
    };
    if x.len() != model.n() {
        return PrimalCheck {
            max_violation: f64::INFINITY,
            worst: Some(format!(
                "solution has {} values for {} columns",
                x.len(),
                model.n()
            )),
            objective: f64::NAN,
        };
    }
    for (j, &xj) in x.iter().enumerate() {
        let kind = model.integrality.get(j).copied().unwrap_or(0);
        let name = model
            .col_names
            .get(j)
            .cloned()
            .unwrap_or_else(|| format!("c{j}"));
        let semi = kind == 2 || kind == 3;
        let bound_v = violation(xj, model.col_lower[j], model.col_upper[j]);
        let bound_v = if semi && xj.abs() <= FEAS_TOL {
            0.0
        } else {
            bound_v
        };
        note(bound_v, format!("column {name} bounds"), &mut max);
        if kind == 1 || kind == 3 {
            note(
                (xj - xj.round()).abs() / INT_TOL * FEAS_TOL,
                format!("column {name} integrality"),
                &mut max,
            );
        }
        if !xj.is_finite() {
            note(
                f64::INFINITY,
                format!("column {name} is not finite"),
                &mut max,
            );
        }
    }
    let activity = model.activities(x);
    for (i, &r) in activity.iter().enumerate() {
        let name = model
            .row_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("r{i}"));
        note(
            violation(r, model.row_lower[i], model.row_upper[i]),
            format!("row {name}"),
            &mut max,
        );
    }
    PrimalCheck {
        max_violation: max,
        worst,
        objective: model.objective(x),
    }
}

/// What capsci found re-checking an LP (or convex QP) optimality certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct DualCheck {
    /// Largest scaled dual-feasibility violation.
    pub max_dual_violation: f64,
    /// Where it is.
    pub worst: Option<String>,
    /// The dual objective computed from the row duals.
    pub dual_objective: f64,
    /// `|primal - dual| / (1 + |primal|)`.
    pub relative_gap: f64,
}

impl DualCheck {
    /// Whether dual feasibility and the duality gap hold within the tolerances.
    pub fn verified(&self) -> bool {
        self.max_dual_violation <= DUAL_TOL && self.relative_gap <= GAP_TOL
    }
}

/// Checks dual feasibility of `y` (row duals, HiGHS's sign convention) and the duality gap at `x`.
///
/// Reduced costs are recomputed as `d = c + Qx - Aᵀy`. For a minimisation, a dual may be positive
/// only where its lower bound is finite and negative only where its upper bound is finite (signs
/// flip for a maximisation); the dual objective is `Σ y_i·bound_i + Σ d_j·bound_j - ½xᵀQx +
/// offset`, each bound picked by the dual's sign.
pub fn check_dual(model: &ModelData, x: &[f64], y: &[f64]) -> DualCheck {
    let s = model.sign();
    let n = model.n();
    let mut worst = None;
    let mut max: f64 = 0.0;
    if y.len() != model.row_lower.len() || x.len() != n {
        return DualCheck {
            max_dual_violation: f64::INFINITY,
            worst: Some("dual solution has the wrong size".into()),
            dual_objective: f64::NAN,
            relative_gap: f64::INFINITY,
        };
    }
    let qx = model.hessian_times(x);
    let mut dual_obj = model.offset;
    let mut term =
        |value: f64, lower: Option<f64>, upper: Option<f64>, scale: f64, what: String| -> f64 {
            // Positive (for min) needs a finite lower bound; negative needs a finite upper bound.
            let signed = s * value;
            let mut v: f64 = 0.0;
            let mut contribution = 0.0;
            if signed > 0.0 {
                match lower {
                    Some(lo) => contribution = value * lo,
                    None => v = signed / scale,
                }
            } else if signed < 0.0 {
                match upper {
                    Some(hi) => contribution = value * hi,
                    None => v = -signed / scale,
                }
            }
            if v > max {
                max = v;
                worst = Some(what);
            }
            contribution
        };
    for (i, &yi) in y.iter().enumerate() {
        let name = model
            .row_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("r{i}"));
        dual_obj += term(
            yi,
            model.row_lower[i],
            model.row_upper[i],
            1.0 + yi.abs(),
            format!("dual of row {name}"),
        );
    }
    let mut aty = vec![0.0; n];
    for (j, slot) in aty.iter_mut().enumerate() {
        *slot = model.column(j).map(|(i, a)| a * y[i]).sum();
    }
    for j in 0..n {
        let d = model.col_cost[j] + qx[j] - aty[j];
        let name = model
            .col_names
            .get(j)
            .cloned()
            .unwrap_or_else(|| format!("c{j}"));
        dual_obj += term(
            d,
            model.col_lower[j],
            model.col_upper[j],
            1.0 + model.col_cost[j].abs(),
            format!("reduced cost of {name}"),
        );
    }
    let xqx: f64 = qx.iter().zip(x).map(|(a, b)| a * b).sum();
    dual_obj -= 0.5 * xqx;
    let primal = model.objective(x);
    let relative_gap = (primal - dual_obj).abs() / (1.0 + primal.abs());
    DualCheck {
        max_dual_violation: max,
        worst,
        dual_objective: dual_obj,
        relative_gap,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// min -x - y  s.t.  x + y <= 4 (row c1), x <= 3, 0 <= x, y.
    fn lp() -> ModelData {
        ModelData {
            sense: "minimize".into(),
            offset: 0.0,
            col_names: vec!["x".into(), "y".into()],
            row_names: vec!["c1".into()],
            col_cost: vec![-1.0, -2.0],
            col_lower: vec![Some(0.0), Some(0.0)],
            col_upper: vec![Some(3.0), None],
            row_lower: vec![None],
            row_upper: vec![Some(4.0)],
            a_start: vec![0, 1, 2],
            a_index: vec![0, 0],
            a_value: vec![1.0, 1.0],
            ..ModelData::default()
        }
    }

    #[test]
    fn optimal_lp_solution_verifies() {
        let m = lp();
        assert!(m.consistent());
        // Optimum: y = 4, x = 0, objective -8; row dual -2, reduced costs x: -1+2 = 1, y: 0.
        let p = check_primal(&m, &[0.0, 4.0]);
        assert!(p.feasible());
        assert_eq!(p.objective, -8.0);
        let d = check_dual(&m, &[0.0, 4.0], &[-2.0]);
        assert!(d.verified(), "{d:?}");
        assert_eq!(d.dual_objective, -8.0);
    }

    #[test]
    fn suboptimal_point_has_a_gap_and_wrong_dual_sign_is_caught() {
        let m = lp();
        let d = check_dual(&m, &[3.0, 1.0], &[-1.0]);
        assert!(!d.verified());
        let d = check_dual(&m, &[0.0, 4.0], &[2.0]);
        assert!(d.max_dual_violation > DUAL_TOL, "{d:?}");
        // y = 2 > 0 on a row without a lower bound, and then d_y = -2 - 2 < 0 without an upper bound.
        assert_eq!(d.worst.as_deref(), Some("reduced cost of y"));
    }

    #[test]
    fn row_bound_and_integrality_violations_are_measured() {
        let mut m = lp();
        let p = check_primal(&m, &[3.0, 3.0]);
        assert!(!p.feasible());
        assert_eq!(p.worst.as_deref(), Some("row c1"));
        assert!((p.max_violation - 2.0 / 5.0).abs() < 1e-12);
        m.integrality = vec![1, 0];
        let p = check_primal(&m, &[0.5, 1.0]);
        assert_eq!(p.worst.as_deref(), Some("column x integrality"));
        let p = check_primal(&m, &[1.0]);
        assert!(!p.feasible());
    }

    #[test]
    fn qp_objective_and_dual_use_the_full_hessian() {
        // min x^2 + xy + y^2 - x  (Q = [[2,1],[1,2]], lower triangle col-wise), no rows, free.
        let m = ModelData {
            sense: "minimize".into(),
            col_names: vec!["x".into(), "y".into()],
            col_cost: vec![-1.0, 0.0],
            col_lower: vec![None, None],
            col_upper: vec![None, None],
            a_start: vec![0, 0, 0],
            q_start: vec![0, 2, 3],
            q_index: vec![0, 1, 1],
            q_value: vec![2.0, 1.0, 2.0],
            ..ModelData::default()
        };
        assert!(m.consistent() && m.is_qp());
        // Optimum: 2x + y = 1, x + 2y = 0 -> x = 2/3, y = -1/3, objective -1/3.
        let x = [2.0 / 3.0, -1.0 / 3.0];
        assert!((m.objective(&x) + 1.0 / 3.0).abs() < 1e-12);
        assert!(check_dual(&m, &x, &[]).verified());
        assert!(!check_dual(&m, &[0.0, 0.0], &[]).verified());
    }
}
