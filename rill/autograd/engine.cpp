// The backward engine: a topological walk over the nodes reachable from the root, summing the
// gradients that reach each node before running it (Kahn's algorithm, deterministic order).
#include <unordered_map>

#include "rill/autograd/grad_mode.h"
#include "rill/autograd/node.h"
#include "rill/core/profiler.h"
#include "rill/ops/elementwise.h"

namespace rill {

namespace {

Edge edge_of(const Tensor& t) {
  Edge e;
  if (!t.defined() || !t.requires_grad()) return e;
  if (t.grad_fn()) {
    e.node = t.grad_fn();
    e.output_nr = t.impl()->output_nr;
  } else {
    e.leaf = t.impl_ptr();
  }
  return e;
}

void accumulate_leaf(TensorImpl* leaf, const Tensor& g) {
  Tensor old(leaf->grad);
  // A fresh sum never aliases a tensor the caller holds; the first gradient is copied for the
  // same reason.
  leaf->grad = old.defined() ? add(old, g).impl_ptr() : g.clone().impl_ptr();
}

void check_grad(const Tensor& g, const Shape& shape, DType dtype, const char* where) {
  RILL_CHECK(g.shape() == shape && g.dtype() == dtype,
             "[backward] {} produced a gradient {} {} for a tensor {} {}", where,
             dtype_name(g.dtype()), shape_str(g.shape()), dtype_name(dtype), shape_str(shape));
}

}  // namespace

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool should_record(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs,
            std::initializer_list<Tensor*> outputs) {
  for (const Tensor* t : inputs) node->inputs.push_back(edge_of(*t));
  int nr = 0;
  for (Tensor* t : outputs) {
    node->outputs.push_back({t->shape(), t->dtype()});
    TensorImpl* impl = t->impl();
    impl->requires_grad = true;
    impl->grad_fn = node;
    impl->output_nr = nr++;
  }
}

void record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
            std::vector<Tensor>& outputs) {
  for (const Tensor& t : inputs) node->inputs.push_back(edge_of(t));
  int nr = 0;
  for (Tensor& t : outputs) {
    node->outputs.push_back({t.shape(), t.dtype()});
    TensorImpl* impl = t.impl();
    impl->requires_grad = true;
    impl->grad_fn = node;
    impl->output_nr = nr++;
  }
}

void run_backward(const Tensor& root, const Tensor& grad_in) {
  RILL_CHECK(root.defined(), "[backward] called on an undefined tensor");
  RILL_CHECK(root.requires_grad(),
             "[backward] the tensor {} {} does not require grad and has no grad_fn: nothing "
             "to differentiate (was it computed under NoGradGuard, or from detached inputs?)",
             dtype_name(root.dtype()), shape_str(root.shape()));
  Tensor grad = grad_in;
  if (!grad.defined()) {
    RILL_CHECK(root.numel() == 1,
               "[backward] a gradient must be given for a non-scalar output {} (only a tensor "
               "with one element gets the implicit gradient 1)",
               shape_str(root.shape()));
    grad = Tensor::ones(root.shape(), root.dtype());
  }
  check_grad(grad, root.shape(), root.dtype(), "the given output gradient");

  NoGradGuard no_grad;
  if (!root.grad_fn()) {
    accumulate_leaf(root.impl(), grad);
    return;
  }

  // Count, for every reachable node, how many edges point at it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root.grad_fn().get()};
  deps[root.grad_fn().get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->inputs) {
      if (!e.node) continue;
      auto [it, inserted] = deps.try_emplace(e.node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.node.get());
    }
  }

  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto add_to_buffer = [&](Node* n, int nr, const Tensor& g) {
    auto& buf = buffers[n];
    if (buf.empty()) buf.resize(n->outputs.size());
    buf[nr] = buf[nr].defined() ? add(buf[nr], g) : g;
  };
  add_to_buffer(root.grad_fn().get(), root.impl()->output_nr, grad);

  std::vector<Node*> ready{root.grad_fn().get()};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    std::vector<Tensor> grads = std::move(buffers[n]);
    buffers.erase(n);
    grads.resize(n->outputs.size());
    for (size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].defined()) grads[i] = Tensor::zeros(n->outputs[i].shape, n->outputs[i].dtype);

    std::vector<Tensor> input_grads;
    {
      ProfileScope scope(n->name());
      input_grads = n->backward(grads);
    }
    RILL_CHECK(input_grads.size() == n->inputs.size(),
               "[backward] {} returned {} gradients for {} inputs", n->name(), input_grads.size(),
               n->inputs.size());
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Edge& e = n->inputs[i];
      if (!e.valid()) continue;
      const Tensor& g = input_grads[i];
      if (e.node) {
        if (g.defined()) {
          const OutputMeta& m = e.node->outputs[e.output_nr];
          check_grad(g, m.shape, m.dtype, n->name());
          add_to_buffer(e.node.get(), e.output_nr, g);
        }
        if (--deps[e.node.get()] == 0) ready.push_back(e.node.get());
      } else if (g.defined()) {
        check_grad(g, e.leaf->shape, e.leaf->dtype, n->name());
        accumulate_leaf(e.leaf.get(), g);
      }
    }
  }
}

}  // namespace rill
