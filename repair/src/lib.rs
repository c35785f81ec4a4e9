//! MINT neuron-level repair: targeting, patches and patch sets (see shared/reference/MINT.md).
//! Built in the repair issue; the crate exists now so the workspace has its final shape.
