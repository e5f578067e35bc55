// Reference linear scan: the recurrence and its adjoint as plain loops over (n, d) lanes.
#include "rill/backend/ref/linear_scan.h"

namespace rill::ref {

namespace {

template <class T>
void forward_impl(const LinearScanArgs& args, const Tensor& out) {
  const int64_t n = args.b.size(0), len = args.b.size(1), d = args.b.size(2);
  const T* a = args.a.data<T>();
  const T* b = args.b.data<T>();
  const T* h0 = args.h0.defined() ? args.h0.data<T>() : nullptr;
  T* h = out.data<T>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      T prev = h0 ? h0[i * d + j] : T(0);
      for (int64_t t = 0; t < len; ++t) {
        const int64_t o = (i * len + t) * d + j;
        prev = a[o] * prev + b[o];
        h[o] = prev;
      }
    }
}

template <class T>
void backward_impl(const LinearScanArgs& args, const Tensor& hs, const Tensor& gs,
                   const LinearScanGrads& grads) {
  const int64_t n = args.b.size(0), len = args.b.size(1), d = args.b.size(2);
  const T* a = args.a.data<T>();
  const T* h = hs.data<T>();
  const T* g = gs.data<T>();
  const T* h0 = args.h0.defined() ? args.h0.data<T>() : nullptr;
  T* da = grads.da.data<T>();
  T* db = grads.db.data<T>();
  T* dh0 = grads.dh0.defined() ? grads.dh0.data<T>() : nullptr;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      // lambda is the total gradient of h_t: its own g_t plus what flows back through h_{t+1}.
      T lambda = 0;
      for (int64_t t = len - 1; t >= 0; --t) {
        const int64_t o = (i * len + t) * d + j;
        const T a_next = t + 1 < len ? a[o + d] : T(0);
        lambda = g[o] + a_next * lambda;
        db[o] = lambda;
        const T h_prev = t > 0 ? h[o - d] : (h0 ? h0[i * d + j] : T(0));
        da[o] = lambda * h_prev;
      }
      if (dh0) dh0[i * d + j] = len > 0 ? a[i * len * d + j] * db[i * len * d + j] : T(0);
    }
}

}  // namespace

void linear_scan(const LinearScanArgs& args, const Tensor& out) {
  RILL_DISPATCH_FLOAT(args.b.dtype(), "linear_scan", T, forward_impl<T>(args, out));
}

void linear_scan_backward(const LinearScanArgs& args, const Tensor& h, const Tensor& g,
                          const LinearScanGrads& grads) {
  RILL_DISPATCH_FLOAT(args.b.dtype(), "linear_scan", T, backward_impl<T>(args, h, g, grads));
}

}  // namespace rill::ref
