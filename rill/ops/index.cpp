// Joining and indexing ops: validate (shapes, dtypes, every index in range), dispatch, record.
// concat/stack backwards hand each input its slice of the gradient; the indexing backwards
// scatter-add the gradient into zeros with a kernel.
#include "rill/ops/index.h"

#include "rill/backend/cpu/index.h"
#include "rill/backend/ref/index.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

// Throws naming `op` and the first index outside [0, size); `where` describes dim and shapes.
void check_in_range(const char* op, const Tensor& index, int64_t size, const std::string& where) {
  RILL_DISPATCH_INDEX(index.dtype(), op, I, {
    const I* p = index.data<I>();  // index is contiguous here
    for (int64_t i = 0; i < index.numel(); ++i) {
      const int64_t v = static_cast<int64_t>(p[i]);
      RILL_CHECK(v >= 0 && v < size, "[{}] index {} is out of range [0, {}) {}", op, v, size,
                 where);
    }
  });
}

struct ConcatBackward : Node {
  int64_t dim;
  std::vector<int64_t> sizes;  // each input's extent along dim
  ConcatBackward(int64_t d, std::vector<int64_t> s) : dim(d), sizes(std::move(s)) {}
  const char* name() const override { return "concat"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    std::vector<Tensor> out(sizes.size());
    int64_t start = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs_grad(i)) out[i] = g[0].narrow(dim, start, sizes[i]);
      start += sizes[i];
    }
    return out;
  }
};

struct StackBackward : Node {
  int64_t dim, count;
  StackBackward(int64_t d, int64_t n) : dim(d), count(n) {}
  const char* name() const override { return "stack"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    std::vector<Tensor> out(count);
    for (int64_t i = 0; i < count; ++i)
      if (needs_grad(i)) out[i] = g[0].select(dim, i);
    return out;
  }
};

// Shared by index_select and embedding: the gradient, seen with `grad_shape` (the selected shape
// along dim), is scatter-added into zeros of x's shape.
struct IndexSelectBackward : Node {
  const char* op;
  Shape x_shape, grad_shape;
  int64_t dim;
  Tensor index;  // 1-D, contiguous
  IndexSelectBackward(const char* op, Shape xs, Shape gs, int64_t d, Tensor idx)
      : op(op), x_shape(std::move(xs)), grad_shape(std::move(gs)), dim(d), index(std::move(idx)) {}
  const char* name() const override { return op; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dx = new_output(x_shape, g[0].dtype());
    RILL_KERNEL(index_select_backward, g[0].reshape(grad_shape), dim, index, dx);
    return {dx};
  }
};

struct GatherBackward : Node {
  Shape x_shape;
  int64_t dim;
  Tensor index;  // contiguous
  GatherBackward(Shape xs, int64_t d, Tensor idx)
      : x_shape(std::move(xs)), dim(d), index(std::move(idx)) {}
  const char* name() const override { return "gather"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dx = new_output(x_shape, g[0].dtype());
    RILL_KERNEL(gather_backward, g[0], dim, index, dx);
    return {dx};
  }
};

// Checks that xs is a non-empty list of defined tensors of one dtype; returns the first.
const Tensor& check_list(const char* op, const std::vector<Tensor>& xs) {
  RILL_CHECK(!xs.empty(), "[{}] needs at least one tensor", op);
  for (size_t i = 0; i < xs.size(); ++i) {
    RILL_CHECK(xs[i].defined(), "[{}] tensor {} is undefined", op, i);
    RILL_CHECK(xs[i].dtype() == xs[0].dtype(), "[{}] tensor {} is {} {} but tensor 0 is {} {}", op,
               i, dtype_name(xs[i].dtype()), shape_str(xs[i].shape()), dtype_name(xs[0].dtype()),
               shape_str(xs[0].shape()));
  }
  return xs[0];
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int64_t dim_in) {
  const Tensor& x0 = check_list("concat", xs);
  RILL_CHECK(x0.dim() >= 1, "[concat] cannot concatenate scalars (tensor 0 is {})",
             shape_str(x0.shape()));
  const int64_t dim = normalize_dim(dim_in, x0.dim(), "concat");
  Shape shape = x0.shape();
  shape[dim] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool match = s.size() == x0.shape().size();
    for (int64_t d = 0; match && d < x0.dim(); ++d) match = d == dim || s[d] == x0.shape()[d];
    RILL_CHECK(match,
               "[concat] tensor {} has shape {}, which does not match tensor 0's {} outside dim {}",
               i, shape_str(s), shape_str(x0.shape()), dim);
    shape[dim] += s[dim];
    sizes.push_back(s[dim]);
  }
  Tensor out = new_output(shape, x0.dtype());
  RILL_KERNEL(concat, xs, dim, out);
  if (should_record(xs)) {
    std::vector<Tensor> outs{out};
    record(std::make_shared<ConcatBackward>(dim, std::move(sizes)), xs, outs);
  }
  return out;
}

namespace {

constexpr int64_t kAppendMinCapacity = 64;

// The strides of a contiguous tensor of `shape` with dim's extent replaced by `capacity`.
Shape buffer_strides(const Shape& shape, int64_t dim, int64_t capacity) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    s *= d == dim ? capacity : shape[d];
  }
  return strides;
}

}  // namespace

Tensor append(const Tensor& cache, const Tensor& x, int64_t dim_in) {
  check_defined("append", x, "x");
  RILL_CHECK(x.dim() >= 1, "[append] cannot append a scalar");
  const int64_t dim = normalize_dim(dim_in, x.dim(), "append");
  if (cache.defined()) {
    check_same_dtype("append", cache, x);
    bool match = cache.dim() == x.dim();
    for (int64_t d = 0; match && d < x.dim(); ++d) match = d == dim || cache.size(d) == x.size(d);
    RILL_CHECK(match, "[append] x {} does not match the cache {} outside dim {}",
               shape_str(x.shape()), shape_str(cache.shape()), dim);
    if (should_record({&cache, &x})) return concat({cache, x}, dim);
  } else if (should_record({&x})) {
    return x;
  }
  const int64_t len = cache.defined() ? cache.size(dim) : 0, n = x.size(dim), total = len + n;
  Shape out_shape = x.shape();
  out_shape[dim] = total;
  const size_t elem = dtype_size(x.dtype());
  if (len > 0) {  // in place, when cache ends where its buffer's appends end and there is room
    Storage& st = *cache.impl()->storage;
    const int64_t cap = st.append_capacity, start = st.append_end - len;
    Shape full = cache.shape();
    full[dim] = cap;
    const Shape strides = buffer_strides(cache.shape(), dim, cap);
    if (cap > 0 && start >= 0 && st.append_end + n <= cap &&
        st.bytes == size_t(numel(full)) * elem && cache.strides() == strides &&
        cache.offset() == start * strides[dim]) {
      make_view(cache, x.shape(), strides, st.append_end * strides[dim]).copy_(x);
      st.append_end += n;
      return make_view(cache, out_shape, strides, cache.offset());
    }
  }
  // A new buffer with room to grow: the cache's rows, then x's.
  const int64_t cap = std::max(kAppendMinCapacity, total + total / 2);
  Shape full = x.shape();
  full[dim] = cap;
  Tensor buffer = Tensor::empty(full, x.dtype());
  Storage& st = *buffer.impl()->storage;
  st.append_capacity = cap, st.append_end = total;
  const Shape strides = buffer_strides(x.shape(), dim, cap);
  if (len > 0) make_view(buffer, cache.shape(), strides, 0).copy_(cache);
  make_view(buffer, x.shape(), strides, len * strides[dim]).copy_(x);
  return make_view(buffer, out_shape, strides, 0);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim_in) {
  const Tensor& x0 = check_list("stack", xs);
  const int64_t dim = normalize_dim(dim_in, x0.dim() + 1, "stack");
  std::vector<Tensor> parts;  // each input viewed with a size-1 dim inserted, not recorded
  for (size_t i = 0; i < xs.size(); ++i) {
    RILL_CHECK(xs[i].shape() == x0.shape(), "[stack] tensor {} has shape {} but tensor 0 has {}", i,
               shape_str(xs[i].shape()), shape_str(x0.shape()));
    Shape s = xs[i].shape(), st = xs[i].strides();
    s.insert(s.begin() + dim, 1);
    st.insert(st.begin() + dim, 1);
    parts.push_back(make_view(xs[i], s, st, xs[i].offset()));
  }
  Shape shape = x0.shape();
  shape.insert(shape.begin() + dim, static_cast<int64_t>(xs.size()));
  Tensor out = new_output(shape, x0.dtype());
  RILL_KERNEL(concat, parts, dim, out);
  if (should_record(xs)) {
    std::vector<Tensor> outs{out};
    record(std::make_shared<StackBackward>(dim, static_cast<int64_t>(xs.size())), xs, outs);
  }
  return out;
}

Tensor index_select(const Tensor& x, int64_t dim_in, const Tensor& index) {
  check_defined("index_select", x);
  check_index_dtype("index_select", index);
  RILL_CHECK(index.dim() == 1, "[index_select] index must be 1-D, got {} (x {})",
             shape_str(index.shape()), shape_str(x.shape()));
  const int64_t dim = normalize_dim(dim_in, x.dim(), "index_select");
  Tensor idx = index.contiguous();
  check_in_range("index_select", idx, x.shape()[dim],
                 fmt::format("for dim {} of x {} (index {})", dim, shape_str(x.shape()),
                             shape_str(index.shape())));
  Shape shape = x.shape();
  shape[dim] = idx.numel();
  Tensor out = new_output(shape, x.dtype());
  RILL_KERNEL(index_select, x, dim, idx, out);
  if (should_record({&x}))
    record(
        std::make_shared<IndexSelectBackward>("index_select", x.shape(), shape, dim, idx.detach()),
        {&x}, {&out});
  return out;
}

Tensor gather(const Tensor& x, int64_t dim_in, const Tensor& index) {
  check_defined("gather", x);
  check_index_dtype("gather", index);
  const int64_t dim = normalize_dim(dim_in, x.dim(), "gather");
  RILL_CHECK(index.dim() == x.dim(), "[gather] index {} must have the rank of x {}",
             shape_str(index.shape()), shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d)
    RILL_CHECK(d == dim || index.shape()[d] <= x.shape()[d],
               "[gather] index {} is larger than x {} in dim {}", shape_str(index.shape()),
               shape_str(x.shape()), d);
  Tensor idx = index.contiguous();
  check_in_range("gather", idx, x.shape()[dim],
                 fmt::format("for dim {} of x {} (index {})", dim, shape_str(x.shape()),
                             shape_str(index.shape())));
  Tensor out = new_output(index.shape(), x.dtype());
  RILL_KERNEL(gather, x, dim, idx, out);
  if (should_record({&x}))
    record(std::make_shared<GatherBackward>(x.shape(), dim, idx.detach()), {&x}, {&out});
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  check_defined("embedding", weight, "weight");
  check_index_dtype("embedding", ids);
  RILL_CHECK(weight.dim() == 2, "[embedding] weight must be 2-D [V, D], got {} (ids {})",
             shape_str(weight.shape()), shape_str(ids.shape()));
  const int64_t v = weight.shape()[0], d = weight.shape()[1], n = ids.numel();
  Tensor idc = ids.contiguous();
  Tensor flat = make_view(idc, {n}, {1}, idc.offset());  // not recorded: ids get no gradient
  check_in_range("embedding", flat, v,
                 fmt::format("for a table of {} rows (weight {}, ids {})", v,
                             shape_str(weight.shape()), shape_str(ids.shape())));
  Shape shape = ids.shape();
  shape.push_back(d);
  Tensor out = new_output(shape, weight.dtype());
  RILL_KERNEL(index_select, weight, 0, flat, make_view(out, {n, d}, {d, 1}, 0));
  if (should_record({&weight}))
    record(std::make_shared<IndexSelectBackward>("embedding", weight.shape(), Shape{n, d}, 0, flat),
           {&weight}, {&out});
  return out;
}

}  // namespace rill
