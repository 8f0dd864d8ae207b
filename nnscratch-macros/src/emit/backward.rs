//! The backward pass, derived by the chain rule: values in reverse topological order, so
//! each value's gradient is complete before it is sent on to its operands.
//!
//! A value used by several consumers receives the sum of their contributions: the first
//! contribution emitted sets its gradient buffer (`Write::Set`), later ones add to it
//! (`Write::Add`). Values with no parameter upstream (the input, and anything computed
//! from the input alone) need no gradient and get none.

use std::collections::HashSet;

use petgraph::graph::NodeIndex;
use proc_macro2::TokenStream;

use crate::graph::{Model, Op};
use crate::layers::{Grads, Site};

/// Decides `Set` or `Add` for each contribution, in emission order.
pub struct Contributions {
    received: HashSet<NodeIndex>,
    /// The parameter sets (indices into `Model::params`) whose gradients have been
    /// written: a layer applied twice adds its second use's.
    parameters: HashSet<usize>,
}

impl Contributions {
    /// The loss has already set the output's gradient.
    pub fn new(model: &Model) -> Self {
        Contributions {
            received: HashSet::from([model.output]),
            parameters: HashSet::new(),
        }
    }

    /// `true` for the first contribution to `node` (set), `false` afterwards (add).
    pub fn first(&mut self, node: NodeIndex) -> bool {
        self.received.insert(node)
    }

    /// `true` for the first contribution to parameter set `index`, `false` afterwards.
    pub fn first_parameter(&mut self, index: usize) -> bool {
        self.parameters.insert(index)
    }
}

/// The backward pass as code and as the equations it implements (`d_v` is ∂loss/∂v).
pub struct Backward {
    pub code: Vec<TokenStream>,
    pub equations: Vec<String>,
    /// For each value, in backward order, the code and equations its layer emitted
    /// (index ranges into `code` and `equations`).
    pub per_value: Vec<(NodeIndex, std::ops::Range<usize>, std::ops::Range<usize>)>,
}

/// The backward statements, after the loss kernel has written the output's gradient:
/// each value's layer sends its gradient on to its operands (and parameters).
pub fn derive(model: &Model) -> Backward {
    let mut code = Vec::new();
    let mut equations = Vec::new();
    let mut contributions = Contributions::new(model);
    let mut per_value = Vec::new();
    for &node in model.order.iter().rev() {
        let value = &model.graph[node];
        let Op::Layer(layer) = &value.op else {
            continue;
        };
        if !value.requires_grad {
            continue;
        }
        let (code_start, equations_start) = (code.len(), equations.len());
        let mut grads = Grads {
            model,
            contributions: &mut contributions,
            code: &mut code,
            equations: &mut equations,
        };
        layer.backward(&Site::new(model, node), &mut grads);
        per_value.push((
            node,
            code_start..code.len(),
            equations_start..equations.len(),
        ));
    }
    Backward {
        code,
        equations,
        per_value,
    }
}
