// GCC vector types and their loads and stores, shared by the cpu backend's hand-vectorised scans
// (the gated-state op's kernels in linear_attention.cpp and vector_decay.cpp). Each is always
// inlined into a function compiled for AVX2 or, behind run-time dispatch, AVX-512, so no vector
// ABI is ever used across a call. Internal to the cpu backend.
#pragma once
#include <cstring>

// The helpers pass 64-byte vectors by value; they are always inlined, so no ABI is used.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace rill::cpu::simd {

// GCC vector types (the attribute cannot take a dependent element type, hence the table).
template <class T, int Bytes>
struct VecOf;
template <>
struct VecOf<float, 32> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<float, 64> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecOf<double, 32> {
  typedef double type __attribute__((vector_size(32)));
};
template <>
struct VecOf<double, 64> {
  typedef double type __attribute__((vector_size(64)));
};
template <class T>
using Vec32 = typename VecOf<T, 32>::type;
template <class T>
using Vec64 = typename VecOf<T, 64>::type;

template <class V, class T>
[[gnu::always_inline]] inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
[[gnu::always_inline]] inline void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}
// A vector from the first n (<= lanes) elements at p, the rest zero: a ragged group of columns
// computes on zeros in its spare lanes and never writes them back.
template <class V, class T>
[[gnu::always_inline]] inline V load_part(const T* p, int n) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  if (n >= kLanes) return load<V>(p);
  V v{};
  for (int i = 0; i < kLanes; ++i)  // a fixed trip count: GCC cannot bound n for its checks
    if (i < n) v[i] = p[i];
  return v;
}
template <class V, class T>
[[gnu::always_inline]] inline void store_part(T* p, const V& v, int n) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  if (n >= kLanes) return store(p, v);
  for (int i = 0; i < kLanes; ++i)
    if (i < n) p[i] = v[i];
}

}  // namespace rill::cpu::simd
