// Joining and indexing ops: cpu against ref (f32 and f64, several shapes and dims, strided
// inputs, i32 and i64 indices, repeated indices), f64 gradient checks, values by hand, and the
// error messages for bad indices, shapes and dtypes; append (a KV cache grown in place) against
// concat.
#include <omp.h>

#include "rill/ops/index.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

Tensor make(const Shape& s, DType dt, uint64_t seed, bool strided) {
  return strided ? random_strided(s, dt, seed) : random(s, dt, seed);
}

// Indices in [0, n) (with repeats), optionally as a non-contiguous view.
Tensor indices(const Shape& s, int64_t n, DType dt, uint64_t seed, bool strided = false) {
  if (!strided) return Tensor::randint(s, 0, n, seed, dt);
  Shape big = s;
  big.back() *= 2;
  return Tensor::randint(big, 0, n, seed, dt).slice(-1, 0, big.back(), 2);
}

}  // namespace

TEST(Concat, CpuMatchesRef) {
  struct Case {
    std::vector<Shape> shapes;
    int64_t dim;
  };
  const std::vector<Case> cases = {
      {{{3}, {5}}, 0},
      {{{2, 3}, {4, 3}, {1, 3}}, 0},
      {{{2, 3}, {2, 5}}, 1},
      {{{2, 3, 4}, {2, 1, 4}, {2, 6, 4}}, -2},
      {{{2, 3, 4}, {2, 3, 7}}, 2},
      {{{2, 60, 90}, {2, 40, 90}, {2, 100, 90}}, 1},  // large enough for the parallel path
  };
  for (DType dt : {DType::f32, DType::f64})
    for (const Case& c : cases)
      for (int strided_mask : {0, 1, 2}) {  // none, every other input, all inputs strided
        std::vector<Tensor> xs;
        for (size_t i = 0; i < c.shapes.size(); ++i) {
          const bool strided = strided_mask == 2 || (strided_mask == 1 && i % 2 == 1);
          xs.push_back(make(c.shapes[i], dt, 30 + i, strided));
        }
        expect_backends_agree_with_grad(
            [&](const std::vector<Tensor>& in) { return concat(in, c.dim); }, xs,
            fmt::format("concat {} dim {} strided {}", dtype_name(dt), c.dim, strided_mask));
      }
}

TEST(Concat, ValuesByHand) {
  Tensor a = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector<double>({7, 8, 9, 10}, {2, 2});
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard g(be);
    EXPECT_EQ(concat({a, b}, 1).to_vector<double>(),
              (std::vector<double>{1, 2, 3, 7, 8, 4, 5, 6, 9, 10}));
    // A non-contiguous input: every other element of a [1, 6] row.
    Tensor c = Tensor::from_vector<double>({7, -1, 8, -1, 9, -1}, {1, 6}).slice(1, 0, 6, 2);
    EXPECT_EQ(concat({a, c}, 0).to_vector<double>(),
              (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
    Tensor ia = Tensor::from_vector<int32_t>({1, 2}, {2}),
           ib = Tensor::from_vector<int32_t>({3}, {1});
    EXPECT_EQ(concat({ia, ib}, 0).to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3}));
  }
}

TEST(Stack, CpuMatchesRef) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Shape& s : std::vector<Shape>{{5}, {3, 4}, {2, 3, 4}, {40, 300}})
      for (int64_t dim = -1; dim <= static_cast<int64_t>(s.size()); ++dim)
        for (bool strided : {false, true}) {
          std::vector<Tensor> xs;
          for (int i = 0; i < 3; ++i) xs.push_back(make(s, dt, 40 + i, strided && i != 1));
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return stack(in, dim); }, xs,
              fmt::format("stack {} {} dim {} strided {}", dtype_name(dt), shape_str(s), dim,
                          strided));
        }
}

TEST(Stack, EqualsSelectOfEachInput) {
  std::vector<Tensor> xs = {random({3, 4}, DType::f64, 1), random({3, 4}, DType::f64, 2)};
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard g(be);
    for (int64_t dim : {0, 1, 2}) {
      Tensor y = stack(xs, dim);
      for (int64_t i = 0; i < 2; ++i)
        EXPECT_TRUE(bitwise_equal(y.select(dim, i), xs[i])) << "dim " << dim << " input " << i;
    }
  }
}

TEST(IndexSelect, CpuMatchesRef) {
  struct Case {
    Shape shape;
    int64_t dim, k;
  };
  const std::vector<Case> cases = {{{6}, 0, 9},           {{5, 4}, 0, 3},     {{5, 4}, 1, 7},
                                   {{3, 5, 4}, 1, 8},     {{3, 5, 4}, -1, 2}, {{300, 130}, 0, 400},
                                   {{4, 90, 100}, 2, 150}};
  for (DType dt : {DType::f32, DType::f64})
    for (DType it : {DType::i32, DType::i64})
      for (const Case& c : cases)
        for (bool strided : {false, true}) {
          const int64_t n = c.shape[c.dim < 0 ? c.dim + c.shape.size() : c.dim];
          Tensor x = make(c.shape, dt, 50, strided);
          Tensor idx = indices({c.k}, n, it, 51, strided);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return index_select(in[0], c.dim, in[1]); },
              {x, idx},
              fmt::format("index_select {} {} {} dim {} strided {}", dtype_name(dt), dtype_name(it),
                          shape_str(c.shape), c.dim, strided));
        }
}

TEST(IndexSelect, IntegerValues) {
  Tensor x = Tensor::randint({4, 5}, -100, 100, 3, DType::i64);
  Tensor idx = Tensor::from_vector<int32_t>({4, 0, 4}, {3});
  std::vector<int64_t> xv = x.to_vector<int64_t>(), e;
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c : {4, 0, 4}) e.push_back(xv[r * 5 + c]);
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard g(be);
    EXPECT_EQ(index_select(x, 1, idx).to_vector<int64_t>(), e) << backend_name(be);
  }
}

TEST(Gather, CpuMatchesRef) {
  struct Case {
    Shape x, index;
    int64_t dim;
  };
  const std::vector<Case> cases = {{{6}, {9}, 0},
                                   {{5, 4}, {7, 4}, 0},
                                   {{5, 4}, {3, 2}, 0},
                                   {{5, 4}, {5, 6}, 1},
                                   {{3, 5, 4}, {2, 8, 3}, 1},
                                   {{3, 5, 4}, {3, 5, 2}, -1},
                                   {{3, 5, 4}, {1, 1, 1}, 2},
                                   {{8, 70, 90}, {8, 60, 90}, 1},
                                   {{2, 6, 300}, {2, 5, 290}, 1}};
  for (DType dt : {DType::f32, DType::f64})
    for (DType it : {DType::i32, DType::i64})
      for (const Case& c : cases)
        for (bool strided : {false, true}) {
          const int64_t d = c.dim < 0 ? c.dim + c.x.size() : c.dim;
          Tensor x = make(c.x, dt, 60, strided);
          Tensor idx = indices(c.index, c.x[d], it, 61, strided);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return gather(in[0], c.dim, in[1]); }, {x, idx},
              fmt::format("gather {} {} x {} index {} dim {} strided {}", dtype_name(dt),
                          dtype_name(it), shape_str(c.x), shape_str(c.index), c.dim, strided));
        }
}

TEST(Gather, ValuesByHand) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor idx = Tensor::from_vector<int64_t>({2, 2, 0, 1}, {2, 2});
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard g(be);
    EXPECT_EQ(gather(x, 1, idx).to_vector<double>(), (std::vector<double>{3, 3, 4, 5}));
    Tensor i0 = Tensor::from_vector<int64_t>({1, 0, 1}, {1, 3});
    EXPECT_EQ(gather(x, 0, i0).to_vector<double>(), (std::vector<double>{4, 2, 6}));
  }
}

TEST(Embedding, CpuMatchesRef) {
  struct Case {
    Shape weight, ids;
  };
  const std::vector<Case> cases = {{{10, 4}, {6}},
                                   {{50, 16}, {3, 7}},
                                   {{7, 3}, {2, 3, 4}},
                                   {{5, 8}, {}},
                                   {{1000, 64}, {4, 160}}};
  for (DType dt : {DType::f32, DType::f64})
    for (DType it : {DType::i32, DType::i64})
      for (const Case& c : cases)
        for (bool strided : {false, true}) {
          Tensor w = make(c.weight, dt, 70, strided);
          Tensor ids = c.ids.empty() ? Tensor::full({}, 3, it)
                                     : indices(c.ids, c.weight[0], it, 71, strided);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); }, {w, ids},
              fmt::format("embedding {} {} weight {} ids {} strided {}", dtype_name(dt),
                          dtype_name(it), shape_str(c.weight), shape_str(c.ids), strided));
        }
}

TEST(Embedding, RepeatedIdsSumTheirGradients) {
  const std::vector<int64_t> ids_v = {1, 3, 1, 1, 0, 3};
  Tensor ids = Tensor::from_vector(ids_v, {2, 3});
  Tensor dy = random({2, 3, 4}, DType::f64, 80);
  std::vector<double> gv = dy.to_vector<double>(), e(5 * 4, 0.0);
  for (size_t k = 0; k < ids_v.size(); ++k)
    for (int64_t j = 0; j < 4; ++j) e[ids_v[k] * 4 + j] += gv[k * 4 + j];
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard g(be);
    Tensor w = random({5, 4}, DType::f64, 81);
    w.set_requires_grad(true);
    Tensor y = embedding(w, ids);
    ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
    y.backward(dy);
    EXPECT_TRUE(all_close(w.grad(), Tensor::from_vector(e, {5, 4}))) << backend_name(be);
    // Rows 2 and 4 are never looked up: their gradient is exactly zero.
    std::vector<double> gw = w.grad().to_vector<double>();
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(gw[2 * 4 + j], 0.0);
  }
}

TEST(Index, Gradcheck) {
  const DType f = DType::f64;
  gradcheck(
      [](const std::vector<Tensor>& in) {
        return concat({in[0], in[1], in[2]}, 1);
      },
      {random({2, 3}, f, 1), random({2, 1}, f, 2), random({2, 2}, f, 3)}, "concat");
  gradcheck(
      [](const std::vector<Tensor>& in) {
        return stack({in[0], in[1]}, 1);
      },
      {random({2, 3}, f, 4), random({2, 3}, f, 5)}, "stack");
  gradcheck([](const std::vector<Tensor>& in) { return index_select(in[0], 0, in[1]); },
            {random({4, 3}, f, 6), Tensor::from_vector<int64_t>({2, 0, 2, 3, 2}, {5})},
            "index_select");
  gradcheck([](const std::vector<Tensor>& in) { return index_select(in[0], 1, in[1]); },
            {random({2, 4, 3}, f, 7), Tensor::from_vector<int32_t>({3, 3, 1}, {3})},
            "index_select dim 1");
  gradcheck([](const std::vector<Tensor>& in) { return gather(in[0], 1, in[1]); },
            {random({3, 4}, f, 8), Tensor::randint({2, 6}, 0, 4, 9)}, "gather");
  gradcheck([](const std::vector<Tensor>& in) { return gather(in[0], 0, in[1]); },
            {random({3, 4, 2}, f, 10), Tensor::randint({5, 3, 2}, 0, 3, 11)}, "gather dim 0");
  gradcheck([](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); },
            {random({5, 3}, f, 12), Tensor::from_vector<int64_t>({4, 1, 4, 0, 4, 1}, {2, 3})},
            "embedding");
}

TEST(Index, OutOfRangeIndices) {
  Tensor x = random({4, 3}, DType::f32, 90);
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard g(be);
    expect_error(
        [&] {
          index_select(x, 0, Tensor::from_vector<int64_t>({0, 4, 1}, {3}));
        },
        {"index_select", "index 4", "[4, 3]", "[3]"});
    expect_error([&] { index_select(x, 1, Tensor::from_vector<int32_t>({-1}, {1})); },
                 {"index_select", "index -1", "[4, 3]"});
    expect_error(
        [&] {
          gather(x, 1, Tensor::from_vector<int64_t>({0, 1, 3, 2}, {2, 2}));
        },
        {"gather", "index 3", "[4, 3]", "[2, 2]"});
    expect_error(
        [&] {
          gather(x, 0, Tensor::from_vector<int32_t>({-2, 0}, {1, 2}));
        },
        {"gather", "index -2", "[4, 3]", "[1, 2]"});
    expect_error(
        [&] {
          embedding(x, Tensor::from_vector<int64_t>({1, 7}, {2}));
        },
        {"embedding", "index 7", "[4, 3]", "[2]"});
    expect_error(
        [&] {
          embedding(x, Tensor::from_vector<int64_t>({1, -3}, {1, 2}));
        },
        {"embedding", "index -3", "[4, 3]", "[1, 2]"});
  }
}

TEST(Index, BadShapesAndDtypes) {
  Tensor x = random({4, 3}, DType::f32, 91);
  expect_error(
      [&] {
        concat({x, random({2, 4}, DType::f32, 1)}, 0);
      },
      {"concat", "[2, 4]", "[4, 3]"});
  expect_error(
      [&] {
        concat({x, random({4, 3}, DType::f64, 1)}, 0);
      },
      {"concat", "f64", "f32", "[4, 3]"});
  expect_error(
      [&] {
        concat({x, random({4, 3, 1}, DType::f32, 1)}, 0);
      },
      {"concat", "[4, 3, 1]", "[4, 3]"});
  expect_error([&] { concat({}, 0); }, {"concat", "at least one"});
  expect_error([&] { concat({x}, 2); }, {"concat", "dim 2"});
  expect_error(
      [&] {
        stack({x, random({4, 2}, DType::f32, 1)}, 0);
      },
      {"stack", "[4, 2]", "[4, 3]"});
  expect_error(
      [&] {
        stack({x, random({4, 3}, DType::f64, 1)}, 0);
      },
      {"stack", "f64", "f32", "[4, 3]"});
  expect_error([&] { stack({x}, 3); }, {"stack", "dim 3"});
  expect_error([&] { index_select(x, 0, random({2}, DType::f32, 1)); },
               {"index_select", "i32 or i64", "f32"});
  expect_error(
      [&] {
        index_select(x, 0, Tensor::randint({2, 2}, 0, 4, 1));
      },
      {"index_select", "1-D", "[2, 2]", "[4, 3]"});
  expect_error([&] { gather(x, 0, Tensor::randint({4}, 0, 4, 1)); },
               {"gather", "rank", "[4]", "[4, 3]"});
  expect_error(
      [&] {
        gather(x, 0, Tensor::randint({2, 5}, 0, 4, 1));
      },
      {"gather", "larger", "[2, 5]", "[4, 3]"});
  expect_error(
      [&] {
        embedding(random({4, 3, 2}, DType::f32, 1), Tensor::randint({2}, 0, 4, 1));
      },
      {"embedding", "2-D", "[4, 3, 2]"});
}

// The scatter-adds visit each destination's sources in index order, the same order as ref's
// row-major walk: gradients match ref bit for bit and do not depend on the thread count.
TEST(Index, ScatterAddIsDeterministic) {
  const int saved = omp_get_max_threads();
  Tensor w = random({64, 300}, DType::f32, 100);
  Tensor ids = Tensor::randint({4, 200}, 0, 64, 101);  // many repeats per row
  Tensor x = random({6, 50, 300}, DType::f32, 102);
  Tensor gidx = Tensor::randint({6, 120, 300}, 0, 50, 103);
  auto grads = [&] {
    Tensor wl = w.detach(), xl = x.detach();
    wl.set_requires_grad(true);
    xl.set_requires_grad(true);
    embedding(wl, ids).backward(random({4, 200, 300}, DType::f32, 104));
    gather(xl, 1, gidx).backward(random({6, 120, 300}, DType::f32, 105));
    return std::vector<Tensor>{wl.grad(), xl.grad()};
  };
  std::vector<Tensor> ref_grads;
  {
    BackendGuard g(Backend::ref);
    ref_grads = grads();
  }
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    std::vector<Tensor> cpu_grads = grads();
    for (size_t i = 0; i < cpu_grads.size(); ++i)
      EXPECT_TRUE(bitwise_equal(cpu_grads[i], ref_grads[i])) << threads << " threads, grad " << i;
  }
  omp_set_num_threads(saved);
}

// append over many calls: always equal to concat of everything so far, bitwise; in place (one
// buffer) between the geometric regrowths; earlier views never change; and a shallow copy that
// appends after another view has grown the buffer gets its own copy instead of overwriting.
TEST(Append, EqualsConcatAndGrowsInPlace) {
  for (int64_t dim : {int64_t(0), int64_t(2), int64_t(3)}) {
    Shape row = {2, 3, 4, 5};
    Tensor cache, expected;
    Tensor snapshot, snapshot_copy;  // a view handed out early, and its values then
    int buffers = 0;
    const void* last = nullptr;
    int64_t len = 0;
    for (int i = 0; i < 200; ++i) {
      row[dim] = 1 + i % 3;
      Tensor x = random(row, DType::f32, 1000 + i);
      expected = expected.defined() ? concat({expected, x}, dim) : x.clone();
      cache = append(cache, x, dim);
      len += row[dim];
      ASSERT_EQ(cache.size(dim), len);
      ASSERT_TRUE(bitwise_equal(cache, expected)) << "dim " << dim << " append " << i;
      if (cache.impl()->storage->data != last) ++buffers, last = cache.impl()->storage->data;
      if (i == 20) snapshot = cache, snapshot_copy = cache.clone();
    }
    EXPECT_TRUE(bitwise_equal(snapshot, snapshot_copy)) << "dim " << dim;
    // Capacity 64, then 1.5x the length at each regrowth: 64, ~97, ~146, ~220, ~331, ~497.
    EXPECT_LE(buffers, 7) << "dim " << dim;
    EXPECT_LE(cache.impl()->storage->append_capacity, len * 3 / 2 + 3) << "dim " << dim;
    row[dim] = 2;
    Tensor x1 = random(row, DType::f32, 1), x2 = random(row, DType::f32, 2);
    Tensor fork = cache;  // a shallow copy of the same view
    Tensor a = append(cache, x1, dim);
    Tensor b = append(fork, x2, dim);
    EXPECT_EQ(a.impl()->storage->data, cache.impl()->storage->data) << "in place";
    EXPECT_NE(b.impl()->storage->data, cache.impl()->storage->data) << "copied";
    EXPECT_TRUE(bitwise_equal(a, concat({expected, x1}, dim))) << "dim " << dim;
    EXPECT_TRUE(bitwise_equal(b, concat({expected, x2}, dim))) << "dim " << dim;
  }
}

// Appending after a suffix view (a sliding window) stays in place; a plain tensor, an empty
// cache and a cache under the tape take the ordinary paths; shapes must agree outside dim.
TEST(Append, WindowsPlainTensorsTapeAndErrors) {
  Tensor cache;
  std::vector<Tensor> rows;
  for (int i = 0; i < 300; ++i) {
    Tensor x = random({1, 2, 1, 3}, DType::f32, 2000 + i);
    rows.push_back(x);
    cache = append(cache, x, 2);
    if (cache.size(2) > 8) cache = cache.narrow(2, cache.size(2) - 8, 8);
    const int64_t n = std::min<int64_t>(8, i + 1);
    std::vector<Tensor> last(rows.end() - n, rows.end());
    ASSERT_TRUE(bitwise_equal(cache, concat(last, 2))) << i;
  }
  EXPECT_LE(cache.impl()->storage->append_capacity, 64) << "stays near the window";
  Tensor plain = random({2, 4}, DType::f64, 3), x = random({2, 1}, DType::f64, 4);
  Tensor y = append(plain, x, 1);
  EXPECT_TRUE(bitwise_equal(y, concat({plain, x}, 1)));
  EXPECT_NE(y.impl()->storage->data, plain.impl()->storage->data);
  EXPECT_TRUE(bitwise_equal(append(Tensor(), x, 1), x));
  Tensor leaf = random({2, 1}, DType::f64, 5);
  leaf.set_requires_grad(true);
  Tensor taped = append(y, leaf, 1);
  ASSERT_TRUE(taped.grad_fn() != nullptr) << "differentiable through concat";
  sum(taped).backward();
  EXPECT_TRUE(bitwise_equal(leaf.grad(), Tensor::ones({2, 1}, DType::f64)));
  expect_error(
      [&] {
        append(plain, random({3, 1}, DType::f64, 6), 1);
      },
      {"append", "[3, 1]", "[2, 4]", "dim 1"});
  expect_error([&] { append(plain, random({2, 1}, DType::f32, 6), 1); }, {"append", "f32", "f64"});
}
