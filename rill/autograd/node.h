// The tape: each recorded op is a Node that knows its inputs (edges) and how to turn the
// gradients of its outputs into gradients of its inputs.
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "rill/core/tensor.h"

namespace rill {

// Where an input's gradient goes: the node that produced it, or a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> node;        // producer (non-leaf input)
  int output_nr = 0;                 // which output of `node`
  std::shared_ptr<TensorImpl> leaf;  // leaf input that requires grad
  bool valid() const { return node != nullptr || leaf != nullptr; }
};

struct OutputMeta {
  Shape shape;
  DType dtype;
};

struct Node {
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // grads[i] is the gradient of output i (zeros when none reached it). Returns one gradient per
  // input, left undefined where needs_grad(i) is false. Runs with grad mode off.
  // Saved tensors must be stored detached (x.detach()) so that no reference cycle forms.
  virtual std::vector<Tensor> backward(const std::vector<Tensor>& grads) = 0;

  bool needs_grad(size_t input) const { return inputs[input].valid(); }

  std::vector<Edge> inputs;
  std::vector<OutputMeta> outputs;
};

// True when grad mode is on and some input requires grad: only then does an op build a Node.
bool should_record(std::initializer_list<const Tensor*> inputs);
bool should_record(const std::vector<Tensor>& inputs);

// Connects `node` to its inputs and makes it the grad_fn of `outputs` (which become
// requires_grad). Call only after should_record() said yes.
void record(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs,
            std::initializer_list<Tensor*> outputs);
void record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
            std::vector<Tensor>& outputs);

// Runs backpropagation from `root` with output gradient `grad` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& grad);

}  // namespace rill
