// rill/nn: the Module tree (dotted names, counts, train/eval, state dicts and their errors),
// seeded initialisation, and every layer (Linear, Embedding, LayerNorm, RMSNorm, MLP, Dropout,
// GRUCell, LSTMCell) against scalar-loop references in double, with f64 gradient checks with
// respect to inputs and parameters.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "rill/autograd/grad_mode.h"
#include "rill/nn/dropout.h"
#include "rill/nn/embedding.h"
#include "rill/nn/init.h"
#include "rill/nn/linear.h"
#include "rill/nn/mlp.h"
#include "rill/nn/module.h"
#include "rill/nn/norm.h"
#include "rill/nn/rnn_cells.h"
#include "rill/ops/index.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::nn;
using namespace rill::testing;

namespace {

constexpr DType f64 = DType::f64;

// A custom module nesting library layers, so names get two levels of prefixes.
class Block : public Module {
 public:
  Block(int64_t dim, uint64_t seed) {
    norm = register_module("norm", std::make_shared<LayerNorm>(dim, 1e-5, true, f64));
    mlp =
        register_module("mlp", std::make_shared<MLP>(dim, 2 * dim, MLPKind::gelu, seed, true, f64));
    drop = register_module("drop", std::make_shared<Dropout>(0.1, seed));
    scale = register_parameter("scale", Tensor::ones({dim}, f64), ParamKind::norm);
    register_buffer("pos", Tensor::arange(dim, f64));
  }
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<MLP> mlp;
  std::shared_ptr<Dropout> drop;
  Tensor scale;
};

class Net : public Module {
 public:
  Net(int64_t vocab, int64_t dim, uint64_t seed) {
    embed = register_module(
        "embed", std::make_shared<Embedding>(vocab, dim, derive_seed(seed, 0), 1.0, f64));
    block = register_module("block", std::make_shared<Block>(dim, derive_seed(seed, 1)));
    LinearOptions o;
    o.dtype = f64;
    head = register_module("head", std::make_shared<Linear>(dim, vocab, derive_seed(seed, 2), o));
  }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<Block> block;
  std::shared_ptr<Linear> head;
};

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.name);
  return out;
}

// Parameters overwritten with fresh random values, so default gains of 1 and biases of 0 cannot
// hide a wrong use of them.
void randomize(const Module& m, uint64_t seed) {
  NoGradGuard g;
  uint64_t k = 0;
  for (auto& p : m.named_parameters())
    Tensor(p.tensor).copy_(random(p.tensor.shape(), p.tensor.dtype(), derive_seed(seed, k++)));
}

// Row-major matrix in double, for the scalar references.
using Vec = std::vector<double>;

// y[r, o] = b[o] + sum_i x[r, i] W[o, i]   (x [R, in], W [out, in])
Vec linear_ref(const Vec& x, const Vec& w, const Vec& b, int64_t rows, int64_t in, int64_t out) {
  Vec y(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

double sigmoid_ref(double v) { return 1.0 / (1.0 + std::exp(-v)); }

Tensor tensor_of(const Vec& v, const Shape& s, DType dt) {
  return Tensor::from_vector<double>(v, s).to(dt);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Module tree

TEST(Module, DottedNamesInRegistrationOrder) {
  Net net(11, 4, 1);
  // Own parameters come before children's; children in registration order, depth first.
  const std::vector<std::string> expected = {
      "embed.weight",         "block.scale",        "block.norm.weight",    "block.norm.bias",
      "block.mlp.fc1.weight", "block.mlp.fc1.bias", "block.mlp.fc2.weight", "block.mlp.fc2.bias",
      "head.weight",          "head.bias"};
  EXPECT_EQ(names_of(net), expected);
  EXPECT_EQ(names_of(*net.block->mlp),
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  // Kinds drive weight decay: embeddings, norm gains and biases are told apart from weights.
  auto params = net.named_parameters();
  EXPECT_EQ(params[0].kind, ParamKind::embedding);
  EXPECT_EQ(params[1].kind, ParamKind::norm);
  EXPECT_EQ(params[2].kind, ParamKind::norm);
  EXPECT_EQ(params[3].kind, ParamKind::bias);
  EXPECT_EQ(params[4].kind, ParamKind::weight);
  EXPECT_EQ(params[5].kind, ParamKind::bias);
  // The handles are the layers' own tensors, leaves that require grad.
  EXPECT_TRUE(params[4].tensor.is_same(net.block->mlp->fc1->weight));
  for (const auto& p : params) EXPECT_TRUE(p.tensor.requires_grad() && p.tensor.is_leaf());
  EXPECT_EQ(net.parameters().size(), expected.size());
  ASSERT_EQ(net.named_buffers().size(), 1u);
  EXPECT_EQ(net.named_buffers()[0].first, "block.pos");
}

TEST(Module, NumParametersCountsElements) {
  const int64_t V = 11, D = 4;
  Net net(V, D, 1);
  const int64_t expected = V * D                  // embed
                           + D + 2 * D            // scale, norm weight and bias
                           + (2 * D * D + 2 * D)  // fc1
                           + (D * 2 * D + D)      // fc2
                           + (V * D + V);         // head
  EXPECT_EQ(net.num_parameters(), expected);
  EXPECT_EQ(Linear(3, 5, 0, {.bias = false}).num_parameters(), 15);
  EXPECT_EQ(GRUCell(3, 2, 0).num_parameters(), 6 * 3 + 6 * 2 + 6 + 6);
}

TEST(Module, TrainEvalPropagatesToChildren) {
  Net net(5, 4, 1);
  EXPECT_TRUE(net.is_training());
  net.eval();
  EXPECT_FALSE(net.is_training());
  EXPECT_FALSE(net.block->is_training());
  EXPECT_FALSE(net.block->drop->is_training());
  EXPECT_FALSE(net.block->mlp->fc2->is_training());
  net.train();
  EXPECT_TRUE(net.block->drop->is_training());
  EXPECT_TRUE(net.block->mlp->fc1->is_training());
  // Switching a subtree leaves the parent alone.
  net.block->eval();
  EXPECT_TRUE(net.is_training());
  EXPECT_FALSE(net.block->mlp->is_training());
}

TEST(Module, StateDictRoundTrip) {
  Net a(7, 4, 1), b(7, 4, 2);
  randomize(a, 5);
  auto sd = a.state_dict();
  ASSERT_EQ(sd.size(), a.named_parameters().size() + 1);  // plus the buffer
  EXPECT_EQ(sd.back().first, "block.pos");
  b.load_state_dict(sd);
  auto pa = a.state_dict(), pb = b.state_dict();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_TRUE(bitwise_equal(pb[i].second, pa[i].second)) << pa[i].first;
    // Values are copied, not aliased: the loaded model owns its storage.
    EXPECT_FALSE(pb[i].second.data_ptr() == pa[i].second.data_ptr()) << pa[i].first;
  }
  // b's parameters are still the same leaf handles its layers use.
  EXPECT_TRUE(b.named_parameters().back().tensor.is_same(b.head->bias));
  EXPECT_TRUE(b.head->weight.requires_grad());
}

TEST(Module, LoadStateDictErrorsNameTheEntries) {
  Net a(7, 4, 1), b(7, 4, 2);
  const auto before = b.state_dict()[0].second.clone();

  auto missing = a.state_dict();
  missing.erase(missing.begin() + 4);  // block.mlp.fc1.weight
  expect_error([&] { b.load_state_dict(missing); },
               {"[load_state_dict]", "missing \"block.mlp.fc1.weight\""});

  auto unexpected = a.state_dict();
  unexpected.emplace_back("block.mlp.fc3.weight", Tensor::zeros({2, 2}, f64));
  expect_error([&] { b.load_state_dict(unexpected); },
               {"[load_state_dict]", "unexpected \"block.mlp.fc3.weight\""});

  auto wrong_shape = a.state_dict();
  wrong_shape[9].second = Tensor::zeros({6}, f64);  // head.bias is [7]
  expect_error([&] { b.load_state_dict(wrong_shape); },
               {"[load_state_dict]", "\"head.bias\"", "[6]", "[7]"});

  auto wrong_dtype = a.state_dict();
  wrong_dtype[0].second = wrong_dtype[0].second.to(DType::f32);
  expect_error([&] { b.load_state_dict(wrong_dtype); }, {"\"embed.weight\"", "f32", "f64"});

  // All problems are reported at once, and a failed load changes nothing.
  unexpected.erase(unexpected.begin() + 4);
  expect_error([&] { b.load_state_dict(unexpected); },
               {"missing \"block.mlp.fc1.weight\"", "unexpected \"block.mlp.fc3.weight\""});
  EXPECT_TRUE(bitwise_equal(b.state_dict()[0].second, before));
}

TEST(Module, ZeroGradClearsEveryParameter) {
  Net net(5, 4, 1);
  for (auto& p : net.parameters()) p.set_grad(Tensor::ones(p.shape(), f64));
  net.zero_grad();
  for (auto& p : net.parameters()) EXPECT_FALSE(p.grad().defined());
}

// ---------------------------------------------------------------------------------------------
// Seeded initialisation

TEST(Init, SameSeedBitwiseDifferentSeedDifferent) {
  for (MLPKind kind : {MLPKind::gelu, MLPKind::swiglu}) {
    MLP a(6, 10, kind, 42), b(6, 10, kind, 42), c(6, 10, kind, 43);
    auto pa = a.named_parameters(), pb = b.named_parameters(), pc = c.named_parameters();
    ASSERT_EQ(pa.size(), pc.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(bitwise_equal(pa[i].tensor, pb[i].tensor)) << pa[i].name;
      EXPECT_FALSE(bitwise_equal(pa[i].tensor, pc[i].tensor)) << pa[i].name;
    }
  }
  // Same-shaped siblings inside one module draw from distinct derived seeds.
  MLP s(6, 10, MLPKind::swiglu, 42);
  EXPECT_FALSE(bitwise_equal(s.gate->weight, s.up->weight));
  GRUCell g(4, 4, 3);
  EXPECT_FALSE(bitwise_equal(g.weight_ih, g.weight_hh));
  EXPECT_FALSE(bitwise_equal(g.bias_ih, g.bias_hh));
  EXPECT_NE(derive_seed(1, 0), derive_seed(1, 1));
  EXPECT_NE(derive_seed(1, 0), derive_seed(2, 0));
}

namespace {
// Largest |v| and the sample mean and standard deviation.
struct Stats {
  double max_abs, mean, std;
};
Stats stats(const Tensor& t) {
  auto v = t.to_vector<double>();
  double m = 0, s = 0, mx = 0;
  for (double x : v) m += x, mx = std::max(mx, std::abs(x));
  m /= v.size();
  for (double x : v) s += (x - m) * (x - m);
  return {mx, m, std::sqrt(s / v.size())};
}
// Sampling noise of these statistics: 6 standard errors for n draws, so a correct init never
// fails and a wrong scale (a factor of sqrt(2) or more) always does.
double six_sigma(int64_t n) { return 6.0 / std::sqrt(double(n)); }
}  // namespace

TEST(Init, LinearDefaultWithinFanInBound) {
  const int64_t in = 300, out = 200;
  Linear lin(in, out, 9);
  const double bound = 1.0 / std::sqrt(double(in));
  Stats w = stats(lin.weight), b = stats(lin.bias);
  EXPECT_LE(w.max_abs, bound);
  EXPECT_LE(b.max_abs, bound);
  // U(-a, a) fills its range and has std a / sqrt(3).
  EXPECT_GT(w.max_abs, 0.99 * bound);
  EXPECT_NEAR(w.std, bound / std::sqrt(3.0), bound * six_sigma(in * out));
  EXPECT_EQ(lin.weight.dtype(), DType::f32);
}

TEST(Init, XavierBounds) {
  const int64_t in = 300, out = 100;
  Linear lin(in, out, 9, {.init = LinearInit::xavier_uniform});
  const double a = std::sqrt(6.0 / double(in + out));
  Stats w = stats(lin.weight);
  EXPECT_LE(w.max_abs, a);
  EXPECT_GT(w.max_abs, 0.99 * a);
  EXPECT_NEAR(w.std, a / std::sqrt(3.0), a * six_sigma(in * out));
  EXPECT_EQ(stats(lin.bias).max_abs, 0.0);  // only fan-in init draws biases

  Tensor t = Tensor::empty({out, in}, f64);
  xavier_normal_(t, 4, 2.0);
  const double s = 2.0 * std::sqrt(2.0 / double(in + out));
  Stats n = stats(t);
  EXPECT_NEAR(n.std, s, s * six_sigma(in * out));
  EXPECT_NEAR(n.mean, 0.0, s * six_sigma(in * out));

  Linear normal(in, out, 9, {.init = LinearInit::normal, .std = 0.02});
  EXPECT_NEAR(stats(normal.weight).std, 0.02, 0.02 * six_sigma(in * out));

  expect_error([] { xavier_uniform_(Tensor::empty({5}), 1); }, {"[xavier]", "[5]"});
}

// W W^T = gain^2 I for wide weights, W^T W = gain^2 I for tall ones (so both the rows and columns
// are orthogonal), computed here in f64; the same seed gives the same matrix, another seed another.
TEST(Init, OrthogonalIsOrthogonalWithGain) {
  for (const Shape& s : {Shape{3, 7}, Shape{7, 3}, Shape{5, 5}, Shape{4, 2, 3}}) {
    Tensor t = Tensor::empty(s, f64);
    orthogonal_(t, 11, std::sqrt(2.0));
    const int64_t rows = s[0], cols = t.numel() / rows, n = std::min(rows, cols);
    const std::vector<double> w = t.to_vector<double>();
    auto at = [&](int64_t i, int64_t j) { return w[i * cols + j]; };
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = 0; q < n; ++q) {
        double dot = 0;
        for (int64_t k = 0; k < std::max(rows, cols); ++k)
          dot += rows <= cols ? at(p, k) * at(q, k) : at(k, p) * at(k, q);
        EXPECT_NEAR(dot, p == q ? 2.0 : 0.0, 1e-12) << shape_str(s) << " " << p << "," << q;
      }
    Tensor same = Tensor::empty(s, f64), other = Tensor::empty(s, f64);
    orthogonal_(same, 11, std::sqrt(2.0));
    orthogonal_(other, 12, std::sqrt(2.0));
    EXPECT_TRUE(bitwise_equal(same, t)) << shape_str(s);
    EXPECT_FALSE(all_close(other, t)) << shape_str(s);
  }
  Linear lin(6, 4, 3, {.init = LinearInit::orthogonal, .gain = 2.0});
  EXPECT_EQ(stats(lin.bias).max_abs, 0.0);
  const std::vector<double> lw = lin.weight.to_vector<double>();  // [4, 6]: W W^T = 4 I
  for (int64_t p = 0; p < 4; ++p)
    for (int64_t q = 0; q < 4; ++q) {
      double dot = 0;
      for (int64_t k = 0; k < 6; ++k) dot += lw[p * 6 + k] * lw[q * 6 + k];
      EXPECT_NEAR(dot, p == q ? 4.0 : 0.0, 1e-5);
    }
  expect_error([] { orthogonal_(Tensor::empty({5}), 1); }, {"[orthogonal]", "[5]"});
}

TEST(Init, EmbeddingDefaultStdIsOne) {
  Embedding e(2000, 64, 3);
  Stats s = stats(e.weight);
  EXPECT_NEAR(s.std, 1.0, six_sigma(2000 * 64));
  EXPECT_NEAR(s.mean, 0.0, six_sigma(2000 * 64));
  Embedding small(2000, 64, 3, 0.02);
  EXPECT_NEAR(stats(small.weight).std, 0.02, 0.02 * six_sigma(2000 * 64));
}

TEST(Init, RnnCellsWithinHiddenBound) {
  GRUCell g(7, 16, 1);
  LSTMCell l(7, 16, 1);
  for (const Module* m : {static_cast<const Module*>(&g), static_cast<const Module*>(&l)})
    for (const auto& p : m->named_parameters()) EXPECT_LE(stats(p.tensor).max_abs, 0.25) << p.name;
}

// ---------------------------------------------------------------------------------------------
// Layers: forward against scalar references, and f64 gradient checks

TEST(Linear, ForwardMatchesReference) {
  for (DType dt : {DType::f32, f64})
    for (bool bias : {true, false}) {
      const int64_t in = 5, out = 3;
      Linear lin(in, out, 2, {.bias = bias, .dtype = dt});
      Tensor x = random({2, 4, in}, dt, 3);  // leading dims are batch
      Vec y = linear_ref(x.to_vector<double>(), lin.weight.to_vector<double>(),
                         bias ? lin.bias.to_vector<double>() : Vec{}, 8, in, out);
      EXPECT_TRUE(all_close(lin.forward(x), tensor_of(y, {2, 4, out}, dt)))
          << dtype_name(dt) << " bias " << bias;
      EXPECT_EQ(lin.bias.defined(), bias);
    }
  Linear lin(5, 3, 2);
  expect_error([&] { lin.forward(random({2, 4}, DType::f32, 1)); }, {"[linear]", "[2, 4]", "5"});
}

TEST(Linear, Gradcheck) {
  LinearOptions o;
  o.dtype = f64;
  Linear lin(4, 3, 1, o);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        lin.weight = in[1], lin.bias = in[2];
        return lin.forward(in[0]);
      },
      {random({2, 3, 4}, f64, 2), lin.weight.detach(), lin.bias.detach()}, "linear");
}

TEST(Embedding, ForwardPicksRows) {
  const int64_t V = 9, D = 4;
  Embedding e(V, D, 1, 1.0, f64);
  Tensor ids = Tensor::from_vector<int64_t>({3, 0, 8, 3, 5, 1}, {2, 3});
  Tensor y = e.forward(ids);
  ASSERT_EQ(y.shape(), (Shape{2, 3, D}));
  auto w = e.weight.to_vector<double>();
  auto idv = ids.to_vector<int64_t>();
  Vec expected;
  for (int64_t id : idv)
    for (int64_t d = 0; d < D; ++d) expected.push_back(w[id * D + d]);
  EXPECT_TRUE(bitwise_equal(y, tensor_of(expected, {2, 3, D}, f64)));
  expect_error([&] { e.forward(Tensor::from_vector<int64_t>({9}, {1})); },
               {"[embedding]", "index 9", "out of range"});
}

TEST(Embedding, GradcheckWithRepeatedIds) {
  Embedding e(6, 3, 1, 1.0, f64);
  // Repeated ids must accumulate into the same row.
  Tensor ids = Tensor::from_vector<int64_t>({2, 5, 2, 0, 2}, {5});
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        e.weight = in[0];
        return e.forward(in[1]);
      },
      {e.weight.detach(), ids}, "embedding");
}

namespace {
Vec layer_norm_ref(const Vec& x, const Vec& w, const Vec& b, int64_t rows, int64_t D, double eps,
                   bool rms) {
  Vec y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = &x[r * D];
    double mean = 0, var = 0;
    if (!rms) {
      for (int64_t d = 0; d < D; ++d) mean += xr[d];
      mean /= D;
    }
    for (int64_t d = 0; d < D; ++d) var += (xr[d] - mean) * (xr[d] - mean);
    var /= D;  // biased, as PyTorch; for RMSNorm this is mean(x^2)
    for (int64_t d = 0; d < D; ++d)
      y[r * D + d] = (xr[d] - mean) / std::sqrt(var + eps) * w[d] + (b.empty() ? 0.0 : b[d]);
  }
  return y;
}
}  // namespace

TEST(Norm, LayerNormAndRMSNormMatchReference) {
  const int64_t D = 7;
  for (DType dt : {DType::f32, f64}) {
    Tensor x = random({3, 2, D}, dt, 4);
    for (bool bias : {true, false}) {
      LayerNorm ln(D, 1e-5, bias, dt);
      randomize(ln, 8);
      Vec y = layer_norm_ref(x.to_vector<double>(), ln.weight.to_vector<double>(),
                             bias ? ln.bias.to_vector<double>() : Vec{}, 6, D, 1e-5, false);
      EXPECT_TRUE(all_close(ln.forward(x), tensor_of(y, x.shape(), dt)))
          << "layer_norm " << dtype_name(dt) << " bias " << bias;
    }
    RMSNorm rn(D, 1e-6, dt);
    randomize(rn, 9);
    Vec y =
        layer_norm_ref(x.to_vector<double>(), rn.weight.to_vector<double>(), {}, 6, D, 1e-6, true);
    EXPECT_TRUE(all_close(rn.forward(x), tensor_of(y, x.shape(), dt)))
        << "rms_norm " << dtype_name(dt);
  }
  // Fresh norms start as gain 1, bias 0.
  LayerNorm fresh(4);
  EXPECT_EQ(fresh.weight.to_vector<float>(), std::vector<float>(4, 1.f));
  EXPECT_EQ(fresh.bias.to_vector<float>(), std::vector<float>(4, 0.f));
  EXPECT_EQ(fresh.eps, 1e-5);
  EXPECT_EQ(RMSNorm(4).eps, 1e-6);
}

TEST(Norm, Gradcheck) {
  const int64_t D = 5;
  LayerNorm ln(D, 1e-5, true, f64);
  randomize(ln, 1);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        ln.weight = in[1], ln.bias = in[2];
        return ln.forward(in[0]);
      },
      {random({3, D}, f64, 2), ln.weight.detach(), ln.bias.detach()}, "layer_norm");
  RMSNorm rn(D, 1e-6, f64);
  randomize(rn, 3);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        rn.weight = in[1];
        return rn.forward(in[0]);
      },
      {random({3, D}, f64, 4), rn.weight.detach()}, "rms_norm");
}

namespace {
double gelu_ref(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }
double silu_ref(double v) { return v * sigmoid_ref(v); }

Vec mlp_ref(const MLP& m, const Vec& x, int64_t rows, int64_t D, int64_t H) {
  auto w = [](const std::shared_ptr<Linear>& l) { return l->weight.to_vector<double>(); };
  auto b = [](const std::shared_ptr<Linear>& l) {
    return l->bias.defined() ? l->bias.to_vector<double>() : Vec{};
  };
  if (m.kind == MLPKind::gelu) {
    Vec h = linear_ref(x, w(m.fc1), b(m.fc1), rows, D, H);
    for (double& v : h) v = gelu_ref(v);
    return linear_ref(h, w(m.fc2), b(m.fc2), rows, H, D);
  }
  Vec g = linear_ref(x, w(m.gate), b(m.gate), rows, D, H);
  Vec u = linear_ref(x, w(m.up), b(m.up), rows, D, H);
  for (size_t i = 0; i < g.size(); ++i) g[i] = silu_ref(g[i]) * u[i];
  return linear_ref(g, w(m.down), b(m.down), rows, H, D);
}
}  // namespace

TEST(MLP, ForwardMatchesReference) {
  const int64_t D = 6, H = 10;
  for (MLPKind kind : {MLPKind::gelu, MLPKind::swiglu})
    for (DType dt : {DType::f32, f64})
      for (bool bias : {true, false}) {
        MLP m(D, H, kind, 5, bias, dt);
        Tensor x = random({2, 3, D}, dt, 6);
        Vec y = mlp_ref(m, x.to_vector<double>(), 6, D, H);
        EXPECT_TRUE(all_close(m.forward(x), tensor_of(y, x.shape(), dt)))
            << (kind == MLPKind::gelu ? "gelu " : "swiglu ") << dtype_name(dt) << " bias " << bias;
        EXPECT_EQ(m.num_parameters(), (kind == MLPKind::gelu ? 2 : 3) * D * H +
                                          (bias ? (kind == MLPKind::gelu ? H + D : 2 * H + D) : 0));
      }
}

TEST(MLP, Gradcheck) {
  const int64_t D = 3, H = 4;
  Tensor x = random({2, D}, f64, 1);
  MLP g(D, H, MLPKind::gelu, 1, true, f64);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        g.fc1->weight = in[1], g.fc1->bias = in[2], g.fc2->weight = in[3], g.fc2->bias = in[4];
        return g.forward(in[0]);
      },
      {x, g.fc1->weight.detach(), g.fc1->bias.detach(), g.fc2->weight.detach(),
       g.fc2->bias.detach()},
      "mlp gelu");
  MLP s(D, H, MLPKind::swiglu, 2, true, f64);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        s.gate->weight = in[1], s.gate->bias = in[2], s.up->weight = in[3], s.up->bias = in[4];
        s.down->weight = in[5], s.down->bias = in[6];
        return s.forward(in[0]);
      },
      {x, s.gate->weight.detach(), s.gate->bias.detach(), s.up->weight.detach(),
       s.up->bias.detach(), s.down->weight.detach(), s.down->bias.detach()},
      "mlp swiglu");
}

// ---------------------------------------------------------------------------------------------
// Recurrent cells against the textbook equations, written here as scalar loops

namespace {
constexpr int64_t kB = 3, kIn = 4, kH = 5;

// gi = W_ih x + b_ih and gh = W_hh h + b_hh for all stacked gates of one batch row.
void gate_inputs(const Module& cell, const Vec& x, const Vec& h, int64_t b, int64_t gates, Vec& gi,
                 Vec& gh) {
  auto p = cell.named_parameters();  // weight_ih, weight_hh, bias_ih, bias_hh
  Vec wih = p[0].tensor.to_vector<double>(), whh = p[1].tensor.to_vector<double>();
  Vec bih = p[2].tensor.to_vector<double>(), bhh = p[3].tensor.to_vector<double>();
  gi.assign(gates * kH, 0);
  gh.assign(gates * kH, 0);
  for (int64_t k = 0; k < gates * kH; ++k) {
    gi[k] = bih[k];
    for (int64_t j = 0; j < kIn; ++j) gi[k] += wih[k * kIn + j] * x[b * kIn + j];
    gh[k] = bhh[k];
    for (int64_t j = 0; j < kH; ++j) gh[k] += whh[k * kH + j] * h[b * kH + j];
  }
}
}  // namespace

TEST(GRUCell, MatchesTextbookEquations) {
  GRUCell cell(kIn, kH, 7, f64);
  Tensor x = random({kB, kIn}, f64, 1), h = random({kB, kH}, f64, 2);
  Vec xv = x.to_vector<double>(), hv = h.to_vector<double>(), expected(kB * kH);
  for (int64_t b = 0; b < kB; ++b) {
    Vec gi, gh;
    gate_inputs(cell, xv, hv, b, 3, gi, gh);
    for (int64_t k = 0; k < kH; ++k) {
      const double r = sigmoid_ref(gi[k] + gh[k]);
      const double z = sigmoid_ref(gi[kH + k] + gh[kH + k]);
      const double n = std::tanh(gi[2 * kH + k] + r * gh[2 * kH + k]);
      expected[b * kH + k] = (1 - z) * n + z * hv[b * kH + k];
    }
  }
  EXPECT_TRUE(all_close(cell.forward(x, h), tensor_of(expected, {kB, kH}, f64)));
  expect_error([&] { cell.forward(random({kB, kIn + 1}, f64, 1), h); }, {"[gru_cell]", "[3, 5]"});
  expect_error([&] { cell.forward(x, random({kB + 1, kH}, f64, 1)); }, {"[gru_cell]", "[4, 5]"});
}

TEST(GRUCell, Gradcheck) {
  GRUCell cell(kIn, kH, 7, f64);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        cell.weight_ih = in[2], cell.weight_hh = in[3], cell.bias_ih = in[4], cell.bias_hh = in[5];
        return cell.forward(in[0], in[1]);
      },
      {random({kB, kIn}, f64, 1), random({kB, kH}, f64, 2), cell.weight_ih.detach(),
       cell.weight_hh.detach(), cell.bias_ih.detach(), cell.bias_hh.detach()},
      "gru_cell");
}

TEST(LSTMCell, MatchesTextbookEquations) {
  LSTMCell cell(kIn, kH, 8, f64);
  Tensor x = random({kB, kIn}, f64, 1), h = random({kB, kH}, f64, 2), c = random({kB, kH}, f64, 3);
  Vec xv = x.to_vector<double>(), hv = h.to_vector<double>(), cv = c.to_vector<double>();
  Vec eh(kB * kH), ec(kB * kH);
  for (int64_t b = 0; b < kB; ++b) {
    Vec gi, gh;
    gate_inputs(cell, xv, hv, b, 4, gi, gh);
    for (int64_t k = 0; k < kH; ++k) {
      const double i = sigmoid_ref(gi[k] + gh[k]);
      const double f = sigmoid_ref(gi[kH + k] + gh[kH + k]);
      const double g = std::tanh(gi[2 * kH + k] + gh[2 * kH + k]);
      const double o = sigmoid_ref(gi[3 * kH + k] + gh[3 * kH + k]);
      ec[b * kH + k] = f * cv[b * kH + k] + i * g;
      eh[b * kH + k] = o * std::tanh(ec[b * kH + k]);
    }
  }
  auto [h2, c2] = cell.forward(x, h, c);
  EXPECT_TRUE(all_close(h2, tensor_of(eh, {kB, kH}, f64)));
  EXPECT_TRUE(all_close(c2, tensor_of(ec, {kB, kH}, f64)));
  expect_error(
      [&] {
        cell.forward(x, h, random({kB, kH + 1}, f64, 1));
      },
      {"[lstm_cell]", "[3, 6]", "[3, 5]"});
}

TEST(LSTMCell, Gradcheck) {
  LSTMCell cell(kIn, kH, 8, f64);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        cell.weight_ih = in[3], cell.weight_hh = in[4], cell.bias_ih = in[5], cell.bias_hh = in[6];
        auto [h2, c2] = cell.forward(in[0], in[1], in[2]);
        return concat({h2, c2}, 1);  // both outputs in one checked tensor
      },
      {random({kB, kIn}, f64, 1), random({kB, kH}, f64, 2), random({kB, kH}, f64, 3),
       cell.weight_ih.detach(), cell.weight_hh.detach(), cell.bias_ih.detach(),
       cell.bias_hh.detach()},
      "lstm_cell");
}

// ---------------------------------------------------------------------------------------------
// Dropout module

TEST(DropoutModule, IdentityInEval) {
  Dropout d(0.5, 11);
  d.eval();
  Tensor x = random({4, 8}, DType::f32, 1);
  EXPECT_TRUE(bitwise_equal(d.forward(x), x));
  EXPECT_EQ(d.generator.offset(), 0u);  // eval draws no random numbers
  // The parent's eval() reaches it too.
  Block blk(4, 1);
  blk.eval();
  Tensor y = random({2, 4}, f64, 2);
  EXPECT_TRUE(bitwise_equal(blk.drop->forward(y), y));
}

TEST(DropoutModule, TrainMasksReproducibleFromSeed) {
  const double p = 0.3;
  Tensor x = random_uniform({50, 40}, f64, 1, 1.0, 2.0);  // never zero, so zeros are the mask
  Dropout a(p, 21), b(p, 21), c(p, 22);
  Tensor a1 = a.forward(x), a2 = a.forward(x);
  EXPECT_TRUE(bitwise_equal(a1, b.forward(x)));
  EXPECT_FALSE(bitwise_equal(a1, a2));  // the generator moves on between calls
  EXPECT_FALSE(bitwise_equal(a1, c.forward(x)));
  EXPECT_EQ(a.generator.offset(), uint64_t(2 * x.numel()));
  // Restoring (seed, offset) replays the second mask exactly.
  b.generator.set_state(21, uint64_t(x.numel()));
  EXPECT_TRUE(bitwise_equal(b.forward(x), a2));
  // Kept elements are scaled by 1 / (1 - p); the drop rate is p up to sampling noise.
  auto xv = x.to_vector<double>(), yv = a1.to_vector<double>();
  int64_t dropped = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0) {
      ++dropped;
    } else {
      EXPECT_NEAR(yv[i], xv[i] / (1 - p), tolerance(f64) * xv[i]);
    }
  }
  const double n = double(x.numel());
  EXPECT_NEAR(dropped / n, p, 6 * std::sqrt(p * (1 - p) / n));
}
