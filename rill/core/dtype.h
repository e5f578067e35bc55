// Element types and the macros that turn a runtime dtype into a template parameter.
#pragma once
#include <cstddef>
#include <cstdint>

#include "rill/core/error.h"

namespace rill {

enum class DType : uint8_t { f32, f64, i32, i64 };

constexpr size_t dtype_size(DType d) { return (d == DType::f32 || d == DType::i32) ? 4 : 8; }
constexpr bool is_floating(DType d) { return d == DType::f32 || d == DType::f64; }
constexpr const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
  }
  return "?";
}

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::i64;
};
template <class T>
constexpr DType dtype_of = DTypeOf<T>::value;

}  // namespace rill

inline auto format_as(rill::DType d) { return rill::dtype_name(d); }

// RILL_DISPATCH_FLOAT(dtype, "op", T, body): runs body with T = float or double.
#define RILL_DISPATCH_FLOAT(DT, OPNAME, T, ...)                                  \
  switch (DT) {                                                                  \
    case ::rill::DType::f32: {                                                   \
      using T = float;                                                           \
      __VA_ARGS__;                                                               \
      break;                                                                     \
    }                                                                            \
    case ::rill::DType::f64: {                                                   \
      using T = double;                                                          \
      __VA_ARGS__;                                                               \
      break;                                                                     \
    }                                                                            \
    default:                                                                     \
      ::rill::fail("[{}] expects a floating dtype (f32 or f64), got {}", OPNAME, \
                   ::rill::dtype_name(DT));                                      \
  }

// RILL_DISPATCH_ALL(dtype, "op", T, body): every dtype.
#define RILL_DISPATCH_ALL(DT, OPNAME, T, ...) \
  switch (DT) {                               \
    case ::rill::DType::f32: {                \
      using T = float;                        \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
    case ::rill::DType::f64: {                \
      using T = double;                       \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
    case ::rill::DType::i32: {                \
      using T = int32_t;                      \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
    case ::rill::DType::i64: {                \
      using T = int64_t;                      \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
  }

// RILL_DISPATCH_INDEX(dtype, "op", T, body): i32 or i64 index tensors.
#define RILL_DISPATCH_INDEX(DT, OPNAME, T, ...)                                \
  switch (DT) {                                                                \
    case ::rill::DType::i32: {                                                 \
      using T = int32_t;                                                       \
      __VA_ARGS__;                                                             \
      break;                                                                   \
    }                                                                          \
    case ::rill::DType::i64: {                                                 \
      using T = int64_t;                                                       \
      __VA_ARGS__;                                                             \
      break;                                                                   \
    }                                                                          \
    default:                                                                   \
      ::rill::fail("[{}] expects an index dtype (i32 or i64), got {}", OPNAME, \
                   ::rill::dtype_name(DT));                                    \
  }
