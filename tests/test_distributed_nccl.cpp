// The NCCL group (rill/dist/nccl_communicator.h). Without CUDA: it fails clearly, naming
// RILL_CUDA. In a CUDA build without a GPU: it fails clearly and the device tests skip, saying
// why. With a GPU: a one-rank NCCL group (the single-GPU path runs the same calls as many GPUs)
// gives alltoall, allgather and all-reduce their meaning, its exact reduction gives the
// one-process tree's bits, and training through it equals training in the one-process group
// bit for bit, with one gradient shard and with two.
#include <gtest/gtest.h>

#include "rill/backend/cuda/cuda.h"
#include "rill/dist/backends.h"
#include "rill/dist/exact_allreduce.h"
#include "rill/dist/nccl_communicator.h"
#include "rill/dist/shard_tree.h"
#include "rill/io/safetensors.h"
#include "rill/train/trainer.h"
#include "tests/support/runs.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

std::unique_ptr<dist::Communicator> one_gpu() {
  return dist::make_nccl_communicator(std::make_unique<dist::LocalCommunicator>(), 0, 60);
}

#define RILL_SKIP_WITHOUT_GPU()                                         \
  if (!dist::nccl_built() || !cuda::available())                        \
  GTEST_SKIP() << (dist::nccl_built() ? "no CUDA device to run NCCL on" \
                                      : "this rill was built without CUDA, so without NCCL")

std::map<std::string, Tensor> checkpoint_tensors(const std::string& path) {
  std::map<std::string, Tensor> m;
  SafetensorsReader r(path);
  for (const std::string& n : r.names()) m[n] = r.load(n);
  return m;
}

}  // namespace

TEST(DistributedNccl, FailsClearlyWithoutNcclOrGpu) {
  if (!dist::nccl_built()) {
    expect_error([] { one_gpu(); }, {"[dist]", "-DRILL_CUDA=ON"});
    expect_error([] { dist::make_communicator({"nccl", 60}); }, {"[dist]", "-DRILL_CUDA=ON"});
  } else if (!cuda::available()) {
    expect_error([] { one_gpu(); }, {"[dist]"});
  } else {
    EXPECT_EQ(one_gpu()->name(), "nccl");
  }
}

TEST(DistributedNccl, OneRankGroupCollectives) {
  RILL_SKIP_WITHOUT_GPU();
  std::unique_ptr<dist::Communicator> comm = one_gpu();
  ASSERT_EQ(comm->size(), 1);
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = random({1001}, dtype, 3);
    Tensor y = Tensor::full({1001}, std::nan(""), dtype);
    comm->alltoall(x.data_ptr(), y.data_ptr(), 1001, dtype);
    EXPECT_TRUE(bitwise_equal(y, x));
    y.fill_(std::nan(""));
    comm->allgather(x.data_ptr(), y.data_ptr(), 1001, dtype);
    EXPECT_TRUE(bitwise_equal(y, x));
    Tensor z = x.clone();
    comm->allreduce_sum(z.data_ptr(), 1001, dtype);
    EXPECT_TRUE(bitwise_equal(z, x));
    // The exact reduction of a block sum over one rank is the block sum.
    dist::TreeSum tree(1001, dtype);
    for (int k = 0; k < 4; ++k) {
      tree.next_leaf().copy_(random({1001}, dtype, 10 + uint64_t(k)));
      tree.commit();
    }
    Tensor sum = tree.result();
    const Tensor expected = sum.clone();
    dist::GradientReducer(*comm, dist::ReduceMode::exact, 64).reduce(sum);
    EXPECT_TRUE(bitwise_equal(sum, expected));
  }
}

TEST(DistributedNccl, TrainingThroughOneGpuEqualsOneProcess) {
  RILL_SKIP_WITHOUT_GPU();
  TempDir dir;
  prepare_pattern_corpus(dir / "data");
  for (int64_t shards : {1, 2}) {
    TrainConfig cfg = tiny_lm_run(dir / "data", dir / "local", {{"type", "linear_attention"}});
    cfg.steps = 6, cfg.warmup = 2, cfg.eval_every = 3, cfg.eval_batches = 2;
    cfg.checkpoint_every = 3, cfg.grad_shards = shards;
    train(cfg, false);
    cfg.out_dir = dir / "nccl";
    std::unique_ptr<dist::Communicator> comm = one_gpu();
    const TrainResult r = train(cfg, false, {}, comm.get());
    EXPECT_EQ(r.grad_shards, shards);
    const auto a = checkpoint_tensors(dir / "local/checkpoint.safetensors");
    const auto b = checkpoint_tensors(dir / "nccl/checkpoint.safetensors");
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, t] : a)
      EXPECT_TRUE(bitwise_equal(t, b.at(name))) << name << " with " << shards << " shards";
  }
}
