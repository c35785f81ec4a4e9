//! The closed forms of the batch editors the joint repair is compared with (shared/reference/MINT.md): MEMIT's
//! covariance-regularised least squares and AlphaEdit's null-space-projected update, each for one layer's down
//! projection W (`[d_model, d_mlp]`), with keys K (`[d_mlp, n]`, the layer's `mlp.hook_post` at the edited
//! positions) and the residual changes R (`[d_model, n]`) the edit should write there. All in f64 on the CPU.

use models::tch::{Device, Kind, Tensor};

use crate::error::{RepairError, Result};

fn double(t: &Tensor) -> Tensor {
    t.to_kind(Kind::Double).to_device(Device::Cpu)
}

fn check(residuals: &Tensor, keys: &Tensor, square: &Tensor) -> Result<()> {
    let (r, k, c) = (residuals.size(), keys.size(), square.size());
    if r.len() != 2 || k.len() != 2 || r[1] != k[1] || c != [k[0], k[0]] {
        return Err(RepairError::Settings(format!(
            "batch edit: residuals {r:?}, keys {k:?} and a {c:?} matrix do not fit ([d, n], [f, n], [f, f])"
        )));
    }
    Ok(())
}

/// MEMIT: ΔW = R Kᵀ (λ C₀ + K Kᵀ)⁻¹, with C₀ = E[k kᵀ] over preserved text (`covariance`, `[d_mlp, d_mlp]`).
pub fn memit_update(residuals: &Tensor, keys: &Tensor, covariance: &Tensor, lambda: f64) -> Result<Tensor> {
    check(residuals, keys, covariance)?;
    let (r, k) = (double(residuals), double(keys));
    let system = double(covariance) * lambda + k.matmul(&k.tr());
    // ΔWᵀ = (λC₀ + KKᵀ)⁻¹ K Rᵀ, the system being symmetric.
    Ok(Tensor::linalg_solve(&system, &k.matmul(&r.tr()), true).tr().to_kind(Kind::Float))
}

/// AlphaEdit's projector onto the null space of the preserved keys: P = U Uᵀ over the eigenvectors of
/// `covariance` whose eigenvalues are below `threshold`, `[d_mlp, d_mlp]`.
pub fn null_space_projector(covariance: &Tensor, threshold: f64) -> Tensor {
    let (values, vectors) = double(covariance).linalg_eigh("L");
    let kept = values.lt(threshold).nonzero().squeeze_dim(1);
    let basis = vectors.index_select(1, &kept);
    basis.matmul(&basis.tr()).to_kind(Kind::Float)
}

/// AlphaEdit: ΔW = R K₁ᵀ P (Kp Kpᵀ P + K₁ K₁ᵀ P + α I)⁻¹, with P the null-space projector and Kp Kpᵀ the
/// accumulated keys of earlier edits (`previous`, `[d_mlp, d_mlp]`; zero for the first batch).
pub fn alphaedit_update(
    residuals: &Tensor,
    keys: &Tensor,
    projector: &Tensor,
    previous: &Tensor,
    alpha: f64,
) -> Result<Tensor> {
    check(residuals, keys, projector)?;
    check(residuals, keys, previous)?;
    let (r, k, p) = (double(residuals), double(keys), double(projector));
    let f = k.size()[0];
    // ΔWᵀ = (P (Kp Kpᵀ + K₁K₁ᵀ) + αI)⁻¹ P K₁ Rᵀ, the transpose of the formula with P and the Grams symmetric.
    let system =
        p.matmul(&(double(previous) + k.matmul(&k.tr()))) + Tensor::eye(f, (Kind::Double, Device::Cpu)) * alpha;
    Ok(Tensor::linalg_solve(&system, &p.matmul(&k).matmul(&r.tr()), true).tr().to_kind(Kind::Float))
}
