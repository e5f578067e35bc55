// Tensor basics: views share storage, strides, dtype conversion, factories, the allocator's
// counters and cache, and the counter-based RNG.
#include <omp.h>

#include "rill/core/allocator.h"
#include "rill/core/rng.h"
#include "rill/core/tensor.h"
#include "rill/ops/elementwise.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

TEST(Tensor, ViewsShareStorageAndMapIndices) {
  Tensor x = Tensor::arange(24, DType::f64).reshape({2, 3, 4});
  EXPECT_TRUE(x.is_contiguous());
  Tensor t = x.transpose(0, 2);  // [4, 3, 2]
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.contiguous().to_vector<double>()[1], 12.0);  // t[0,0,1] = x[1,0,0]
  Tensor s = x.slice(2, 1, 4, 2);                          // columns 1 and 3
  EXPECT_EQ(s.contiguous().to_vector<double>(),
            (std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  EXPECT_EQ(x.select(1, -1).shape(), (Shape{2, 4}));
  EXPECT_EQ(x.select(1, -1).to_vector<double>()[0], 8.0);
  Tensor e = Tensor::from_vector<float>({1, 2, 3}, {3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides(), (Shape{1, 0}));
  EXPECT_EQ(e.contiguous().to_vector<float>()[5], 2.f);
  // Writes through a view reach the base.
  x.select(0, 1).fill_(-1);
  EXPECT_EQ(x.to_vector<double>()[12], -1.0);
  EXPECT_EQ(x.to_vector<double>()[11], 11.0);
  EXPECT_EQ(x.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(x.unsqueeze(3).squeeze(3).shape(), (Shape{2, 3, 4}));
}

TEST(Tensor, ReshapeCopiesOnlyWhenItMust) {
  Tensor x = random({3, 4}, DType::f32, 1);
  EXPECT_EQ(x.reshape({12}).data_ptr(), x.data_ptr());
  Tensor t = x.transpose(0, 1);
  Tensor r = t.reshape({12});
  EXPECT_NE(r.data_ptr(), x.data_ptr());
  EXPECT_TRUE(all_close(r, t.contiguous().view({12})));
  expect_error([&] { t.view({12}); }, {"[view]", "not contiguous"});
  expect_error([&] { x.view({5, -1}); }, {"[view]", "[3, 4]", "[5, -1]"});
}

TEST(Tensor, DtypeConversion) {
  Tensor x = Tensor::from_vector<double>({1.5, -2.5, 3.25}, {3});
  EXPECT_EQ(x.to(DType::f32).to_vector<float>(), (std::vector<float>{1.5f, -2.5f, 3.25f}));
  EXPECT_EQ(x.to(DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(Tensor::arange(3, DType::i32).to(DType::f64).to_vector<double>(),
            (std::vector<double>{0, 1, 2}));
  expect_error([&] { x.data<float>(); }, {"[data]", "f64", "f32"});
}

TEST(Tensor, CopyKernelsAgreeAcrossBackends) {
  for (DType src : {DType::f32, DType::f64, DType::i32, DType::i64})
    for (DType dst : {DType::f32, DType::f64, DType::i64}) {
      Tensor x = random_strided({5, 70}, DType::f64, 2).to(src);
      expect_backends_agree([&] { return std::vector<Tensor>{x.clone().to(dst)}; },
                            fmt::format("copy {} -> {}", dtype_name(src), dtype_name(dst)));
    }
}

TEST(Allocator, CountsLiveAndPeakBytesAndReusesBlocks) {
  Allocator& a = Allocator::instance();
  const size_t live0 = a.live_bytes();
  a.reset_peak();
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({1000, 1000}, DType::f32);
    first = t.data_ptr();
    EXPECT_EQ(a.live_bytes() - live0, 4000000u);
  }
  EXPECT_EQ(a.live_bytes(), live0);
  EXPECT_GE(a.peak_bytes() - live0, 4000000u);
  EXPECT_GE(a.cached_bytes(), Allocator::size_class(4000000));
  Tensor again = Tensor::empty({1000, 1000}, DType::f32);
  EXPECT_EQ(again.data_ptr(), first);  // the freed block came back, not fresh memory
  EXPECT_LE(Allocator::size_class(4000000), 4000000u * 9 / 8);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.data_ptr()) % 64, 0u);
}

TEST(Rng, SameValuesForAnyThreadCountAndSeedMatters) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor a = Tensor::randn({300000}, 7);
  omp_set_num_threads(2);
  Tensor b = Tensor::randn({300000}, 7);
  omp_set_num_threads(saved);
  EXPECT_TRUE(bitwise_equal(a, b));
  EXPECT_FALSE(bitwise_equal(a, Tensor::randn({300000}, 8)));
  // Roughly standard normal.
  auto v = a.to_vector<float>();
  double m = 0, s = 0;
  for (float x : v) m += x, s += double(x) * x;
  m /= v.size();
  s = s / v.size() - m * m;
  EXPECT_NEAR(m, 0, 0.01);
  EXPECT_NEAR(s, 1, 0.01);
  Generator g(5);
  EXPECT_EQ(g.advance(10), 0u);
  EXPECT_EQ(g.advance(3), 10u);
  EXPECT_EQ(g.offset(), 13u);
}
