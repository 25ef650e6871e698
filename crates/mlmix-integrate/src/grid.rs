//! Integration grids: nodes and log-weights over the standardised random
//! effects z (b = mu + L z, Cholesky parameterisation).
//!
//! Single-level models have no random effects: their grid is one node at
//! the origin with weight 1, and the loop over nodes runs once.

/// A set of integration nodes in `dims` dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Number of dimensions.
    pub dims: usize,
    /// Node coordinates, `n_nodes x dims` row-major.
    pub nodes: Vec<f64>,
    /// ln of each node's weight (the weights sum to 1).
    pub log_weights: Vec<f64>,
}

impl Grid {
    /// The grid of a model without random effects: one node, weight 1.
    pub fn single() -> Self {
        Grid {
            dims: 0,
            nodes: Vec::new(),
            log_weights: vec![0.0],
        }
    }

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.log_weights.len()
    }
}
