// Data-parallel training (rill/dist/). In one process: the fixed shard tree, the exact
// reduction over a group of threads (1, 2 and 4 ranks give the bits of one process, with buckets
// that pad), the carried state cut and joined, and the sharded gradient against the plain one
// within the tolerance table (f64 and f32). Under `mpirun -np 2` on this machine (loopback): the
// MPI group's calls against the one-process tree (this binary spawned as its own workers), then
// the rill command: two ranks train bitwise as one process with the same global batch and
// grad_shards (f64, and f32 with dropout); a rank killed mid-run ends the job within a bounded
// time with a clear message on every rank; the run resumed from that job's checkpoint, on two
// ranks and on one, ends bitwise as the uninterrupted run; an error on the ranks ends the job.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "rill/dist/data_parallel.h"
#include "rill/dist/exact_allreduce.h"
#include "rill/dist/mpi_communicator.h"
#include "rill/dist/shard_tree.h"
#include "rill/dist/state_shards.h"
#include "rill/io/safetensors.h"
#include "rill/train/checkpoint.h"
#include "rill/train/trainer.h"
#include "tests/support/runs.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// A group of ranks as threads of this process, sharing memory: the exact reduction's logic
// without MPI.

class ThreadGroup {
 public:
  explicit ThreadGroup(int n) : n_(n), slots_(size_t(n)) {}
  int size() const { return n_; }
  // Every thread arrives, then all go on.
  void sync() {
    std::unique_lock<std::mutex> lock(m_);
    const int64_t gen = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0, ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }
  std::vector<const void*>& slots() { return slots_; }

 private:
  int n_;
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  std::vector<const void*> slots_;
};

class ThreadCommunicator : public dist::Communicator {
 public:
  ThreadCommunicator(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size(); }
  std::string name() const override { return "threads"; }
  void alltoall(const void* send, void* recv, int64_t count, DType dtype) override {
    const size_t row = size_t(count * dist::element_bytes(dtype, "alltoall"));
    g_.slots()[size_t(rank_)] = send;
    g_.sync();
    for (int r = 0; r < size(); ++r)
      std::memcpy(static_cast<char*>(recv) + r * row,
                  static_cast<const char*>(g_.slots()[size_t(r)]) + rank_ * row, row);
    g_.sync();
  }
  void allgather(const void* send, void* recv, int64_t count, DType dtype) override {
    const size_t row = size_t(count * dist::element_bytes(dtype, "allgather"));
    g_.slots()[size_t(rank_)] = send;
    g_.sync();
    for (int r = 0; r < size(); ++r)
      std::memcpy(static_cast<char*>(recv) + r * row, g_.slots()[size_t(r)], row);
    g_.sync();
  }
  void allreduce_sum(void* data, int64_t count, DType dtype) override {
    const size_t bytes = size_t(count * dist::element_bytes(dtype, "allreduce"));
    std::vector<char> mine(static_cast<char*>(data), static_cast<char*>(data) + bytes);
    g_.slots()[size_t(rank_)] = mine.data();
    g_.sync();
    std::memcpy(data, g_.slots()[0], bytes);
    for (int r = 1; r < size(); ++r) dist::add_into(data, g_.slots()[size_t(r)], count, dtype);
    g_.sync();
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    g_.slots()[size_t(rank_)] = data;
    g_.sync();
    if (rank_ != root) std::memcpy(data, g_.slots()[size_t(root)], size_t(bytes));
    g_.sync();
  }
  std::vector<std::string> gather_bytes(const std::string& mine, int root) override {
    g_.slots()[size_t(rank_)] = &mine;
    g_.sync();
    std::vector<std::string> out;
    if (rank_ == root)
      for (int r = 0; r < size(); ++r)
        out.push_back(*static_cast<const std::string*>(g_.slots()[size_t(r)]));
    g_.sync();
    return out;
  }
  void barrier() override { g_.sync(); }
  [[noreturn]] void abort(int code) override { std::abort(); }

 private:
  ThreadGroup& g_;
  int rank_;
};

// The gradient of shard k in a test: a fixed random vector of mixed magnitudes (so the order of
// the sums shows in the last bits).
Tensor shard_vector(int64_t k, int64_t len, DType dtype) {
  Tensor a = random({len}, dtype, 100 + uint64_t(k));
  Tensor b = random_uniform({len}, dtype, 200 + uint64_t(k), -6, 6);
  std::vector<double> v = a.to_vector<double>(), e = b.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) v[i] *= std::pow(10.0, e[i]);
  return Tensor::from_vector(v, {len}).to(dtype);
}

// The one-process result: the tree over all S shards, in one TreeSum.
Tensor one_process_sum(int64_t shards, int64_t len, DType dtype) {
  dist::TreeSum tree(len, dtype);
  for (int64_t k = 0; k < shards; ++k) {
    Tensor leaf = tree.next_leaf();
    leaf.copy_(shard_vector(k, len, dtype));
    tree.commit();
  }
  return tree.result().clone();
}

// ---------------------------------------------------------------------------------------------
// Spawning the rill command and mpirun.

struct Outcome {
  int code = -1;
  std::string output;  // stdout and stderr together
  double seconds = 0;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a shell command in `dir` (output to a file), killing it after timeout_s.
Outcome shell(const std::string& cmd, const std::string& dir, double timeout_s = 120) {
  const std::string out = dir + "/output.txt";
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    const std::string full = fmt::format("cd {} && exec {} > {} 2>&1", dir, cmd, out);
    execl("/bin/sh", "sh", "-c", full.c_str(), (char*)nullptr);
    _exit(127);
  }
  Outcome o;
  for (int status = 0;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      o.code = -2;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  o.output = read_text(out);
  return o;
}

#ifdef RILL_MPIRUN
// mpirun as root on one machine, loopback only, more ranks than free cores allowed.
std::string mpirun(int ranks, const std::string& extra = "") {
  return fmt::format(
      "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 {} -np {} --oversubscribe "
      "--mca btl self,vader,tcp --mca btl_tcp_if_include lo -x OMP_NUM_THREADS=1 -x "
      "OMP_WAIT_POLICY=passive {}",
      RILL_MPIRUN, ranks, extra);
}
#define RILL_SKIP_WITHOUT_MPI() (void)0
#else
std::string mpirun(int, const std::string& = "") { return ""; }
#define RILL_SKIP_WITHOUT_MPI() GTEST_SKIP() << "this rill was built without MPI"
#endif

std::string rill_alone(const std::string& args) {
  return fmt::format("env OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive {} {}", RILL_CLI, args);
}

// Every tensor of a checkpoint by name, and its training progress.
struct Saved {
  std::map<std::string, Tensor> tensors;
  TrainingProgress progress;
};
Saved read_saved(const std::string& path) {
  Saved s;
  SafetensorsReader r(path);
  for (const std::string& n : r.names()) s.tensors[n] = r.load(n);
  s.progress = read_checkpoint_info(path).progress;
  return s;
}

void expect_same_run(const Saved& a, const Saved& b, const std::string& what) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << what;
  for (const auto& [name, t] : a.tensors) {
    auto it = b.tensors.find(name);
    ASSERT_NE(it, b.tensors.end()) << what << ": " << name;
    EXPECT_TRUE(bitwise_equal(t, it->second)) << what << ": " << name;
  }
  EXPECT_EQ(a.progress.step, b.progress.step) << what;
  EXPECT_EQ(a.progress.data_position, b.progress.data_position) << what;
  ASSERT_EQ(a.progress.rngs.size(), b.progress.rngs.size()) << what;
  for (const auto& [name, g] : a.progress.rngs)
    EXPECT_EQ(g.offset(), b.progress.rngs.at(name).offset()) << what << ": " << name;
}

// The training losses a run logged, by step.
std::map<int64_t, double> logged_losses(const std::string& dir) {
  std::map<int64_t, double> m;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    if (j["split"] == "train") m[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return m;
}

// A tiny run config file in dir: the pattern corpus, 8 lanes, carried state.
std::string write_config(const std::string& dir, const std::string& name, TrainConfig c) {
  const std::string path = dir + "/" + name + ".json";
  std::ofstream(path) << c.to_json().dump(2);
  return path;
}

TrainConfig tiny(const std::string& dir, const std::string& dtype, double dropout = 0) {
  TrainConfig c =
      tiny_lm_run(dir + "/data", "run", {{"type", "linear_attention"}, {"heads", 2}}, dtype);
  c.model["dropout"] = dropout;
  c.steps = 8, c.warmup = 2, c.eval_every = 4, c.eval_batches = 2, c.checkpoint_every = 4;
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// In one process.

TEST(Distributed, LayoutRefusesWhatCannotSplit) {
  const dist::ShardLayout l = dist::ShardLayout::make(16, 8, 2, 1, true);
  EXPECT_EQ(l.local_shards(), 4);
  EXPECT_EQ(l.first_shard(), 4);
  EXPECT_EQ(l.lanes_per_shard(), 2);
  expect_error([] { dist::ShardLayout::make(16, 3, 1, 0, false); },
               {"grad_shards 3 does not divide the batch of 16"});
  expect_error([] { dist::ShardLayout::make(16, 2, 4, 0, false); },
               {"4 ranks need grad_shards to be a multiple of 4", "it is 2"});
  expect_error([] { dist::ShardLayout::make(12, 6, 1, 0, true); },
               {"power of two", "got 6", "\"fast\""});
  expect_error([] { dist::ShardLayout::make(12, 6, 3, 0, true); }, {"power of two"});
  EXPECT_EQ(dist::ShardLayout::make(12, 6, 3, 2, false).first_shard(), 4);
}

// The binary counter builds the tree ((g0 + g1) + (g2 + g3)) ..., and tree_sum_rows the same.
TEST(Distributed, TreeSumIsTheFixedTree) {
  const int64_t len = 37;
  for (DType dtype : {DType::f32, DType::f64}) {
    std::vector<Tensor> g;
    for (int64_t k = 0; k < 8; ++k) g.push_back(shard_vector(k, len, dtype));
    auto add = [](const Tensor& a, const Tensor& b) {
      Tensor c = a.clone();
      dist::add_into(c.data_ptr(), b.data_ptr(), c.numel(), c.dtype());
      return c;
    };
    const Tensor expected =
        add(add(add(g[0], g[1]), add(g[2], g[3])), add(add(g[4], g[5]), add(g[6], g[7])));
    EXPECT_TRUE(bitwise_equal(one_process_sum(8, len, dtype), expected)) << dtype_name(dtype);
    Tensor rows = Tensor::empty({8, len}, dtype);
    for (int64_t k = 0; k < 8; ++k) rows.narrow(0, k, 1).reshape({len}).copy_(g[size_t(k)]);
    dist::tree_sum_rows(rows.data_ptr(), 8, len, dtype);
    EXPECT_TRUE(bitwise_equal(rows.narrow(0, 0, 1).reshape({len}).contiguous(), expected));
    // A sequential sum takes another order: the tree's bits are not an accident of the data.
    Tensor seq = g[0].clone();
    for (int64_t k = 1; k < 8; ++k) seq = add(seq, g[size_t(k)]);
    EXPECT_FALSE(bitwise_equal(seq, expected)) << dtype_name(dtype);
  }
  dist::TreeSum odd(4, DType::f32);
  for (int k = 0; k < 3; ++k) {
    odd.next_leaf().copy_(Tensor::ones({4}));
    odd.commit();
  }
  expect_error([&] { odd.result(); }, {"power of two"});
}

// N ranks (threads), each summing its block of S = 8 shards and reducing exactly, all get the
// one-process sum bit for bit, for N = 1, 2, 4, in f32 and f64, with buckets that split the
// vector unevenly and chunks that need padding.
TEST(Distributed, ExactReductionEqualsOneProcessForAnyRankCount) {
  const int64_t shards = 8;
  for (DType dtype : {DType::f32, DType::f64})
    for (int64_t len : {1, 13, 1000})
      for (int64_t bucket : {int64_t(7), int64_t(64), dist::GradientReducer::kDefaultBucketElems}) {
        const Tensor expected = one_process_sum(shards, len, dtype);
        for (int n : {1, 2, 4}) {
          ThreadGroup group(n);
          std::vector<Tensor> results(static_cast<size_t>(n));
          std::vector<std::thread> threads;
          for (int r = 0; r < n; ++r)
            threads.emplace_back([&, r] {
              ThreadCommunicator comm(group, r);
              const dist::ShardLayout l = dist::ShardLayout::make(shards, shards, n, r, true);
              dist::TreeSum tree(len, dtype);
              for (int64_t k = 0; k < l.local_shards(); ++k) {
                tree.next_leaf().copy_(shard_vector(l.first_shard() + k, len, dtype));
                tree.commit();
              }
              Tensor sum = tree.result();
              dist::GradientReducer reducer(comm, dist::ReduceMode::exact, bucket);
              reducer.reduce(sum);
              results[size_t(r)] = sum.clone();
            });
          for (auto& t : threads) t.join();
          for (int r = 0; r < n; ++r)
            EXPECT_TRUE(bitwise_equal(results[size_t(r)], expected))
                << dtype_name(dtype) << " len " << len << " bucket " << bucket << " rank " << r
                << " of " << n;
        }
      }
}

TEST(Distributed, CarriedStateSplitsAndJoins) {
  State full;
  full.set("layer0.s", random({8, 3, 5}, DType::f32, 1));
  full.set("layer1.h", random({8, 4}, DType::f64, 2));
  full.set("layer1.pos", Tensor::scalar(17, DType::i64));
  std::vector<State> parts = dist::split_state(full, 4);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[2].get("layer0.s").shape(), (Shape{2, 3, 5}));
  EXPECT_TRUE(
      bitwise_equal(parts[3].get("layer1.h"), full.get("layer1.h").narrow(0, 6, 2).contiguous()));
  EXPECT_EQ(parts[1].get("layer1.pos").item<int64_t>(), 17);
  const std::vector<State> unpacked = dist::unpack_states(dist::pack_states(parts));
  const State joined = dist::join_states(unpacked);
  ASSERT_EQ(joined.tensors().size(), 3u);
  for (const auto& [name, t] : full.tensors())
    EXPECT_TRUE(bitwise_equal(joined.get(name), t)) << name;
  expect_error([&] { dist::split_state(full, 3); }, {"8 lanes do not split into 3"});
  parts[1].set("layer1.pos", Tensor::scalar(18, DType::i64));
  expect_error([&] { dist::join_states(parts); }, {"layer1.pos", "differs between shards"});
}

// The gradient of one step from S = 4 shards (the shard tree, scaled by 1/4) against the plain
// gradient of the whole batch: within the tolerance table, in f64 and in f32. The loss too.
TEST(Distributed, ShardedGradientMatchesThePlainGradient) {
  TempDir dir;
  prepare_pattern_corpus(dir / "data");
  for (const std::string dtype : {"f64", "f32"}) {
    TrainConfig cfg = tiny(dir.str(), dtype);
    std::vector<std::vector<Tensor>> grads;
    std::vector<double> losses;
    for (int64_t shards : {1, 4}) {
      RunParts p = build_run(cfg);
      p.model->train();
      dist::LocalCommunicator local;
      dist::DataParallel dp(local, *p.model, dist::ShardLayout::make(cfg.batch, shards, 1, 0, true),
                            dist::ReduceMode::exact, true);
      EXPECT_EQ(dp.plain(), shards == 1);
      dp.reset_state();
      TaskBatch b;
      for (int step = 0; step < 2; ++step) {  // the second step reads a carried state
        b = p.task->next_batch();
        if (b.fresh_state) dp.reset_state();
        dp.detach_state();
        p.model->zero_grad();
        losses.push_back(dp.compute_gradients(*p.task, b));
      }
      std::vector<Tensor> g;
      for (const Tensor& t : p.model->parameters()) g.push_back(t.grad().clone());
      grads.push_back(g);
    }
    const DType dt = dtype == "f64" ? DType::f64 : DType::f32;
    ASSERT_EQ(grads[0].size(), grads[1].size());
    for (size_t i = 0; i < grads[0].size(); ++i)
      EXPECT_TRUE(all_close(grads[1][i], grads[0][i], tolerance(dt))) << dtype << " param " << i;
    EXPECT_NEAR(losses[3], losses[1], tolerance(dt) * std::abs(losses[1])) << dtype;
  }
}

// ---------------------------------------------------------------------------------------------
// Under mpirun.

// This binary, spawned by MpiGroupMatchesTheOneProcessTree as each rank of `mpirun -np 2`.
TEST(Distributed, MpiWorker) {
  if (!std::getenv("RILL_DIST_WORKER"))
    GTEST_SKIP() << "runs only under mpirun, spawned by MpiGroupMatchesTheOneProcessTree";
  std::unique_ptr<dist::Communicator> comm = dist::make_mpi_communicator(60);
  ASSERT_EQ(comm->size(), 2);
  const int r = comm->rank();
  for (DType dtype : {DType::f32, DType::f64})
    for (int64_t len : {1, 1001})
      for (int64_t bucket : {int64_t(7), dist::GradientReducer::kDefaultBucketElems}) {
        const dist::ShardLayout l = dist::ShardLayout::make(8, 8, 2, r, true);
        dist::TreeSum tree(len, dtype);
        for (int64_t k = 0; k < l.local_shards(); ++k) {
          tree.next_leaf().copy_(shard_vector(l.first_shard() + k, len, dtype));
          tree.commit();
        }
        Tensor sum = tree.result();
        dist::GradientReducer(*comm, dist::ReduceMode::exact, bucket).reduce(sum);
        EXPECT_TRUE(bitwise_equal(sum, one_process_sum(8, len, dtype)))
            << dtype_name(dtype) << " " << len << " " << bucket << " rank " << r;
      }
  int64_t value = r == 0 ? 42 : -1;
  comm->broadcast(&value, sizeof value, 0);
  EXPECT_EQ(value, 42);
  const std::vector<std::string> all = comm->gather_bytes(std::string(size_t(r + 1), 'a' + r), 0);
  if (r == 0) {
    EXPECT_EQ(all, (std::vector<std::string>{"a", "bb"}));
  } else {
    EXPECT_TRUE(all.empty());
  }
  comm->barrier();
}

TEST(Distributed, MpiGroupMatchesTheOneProcessTree) {
  RILL_SKIP_WITHOUT_MPI();
  TempDir dir;
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const Outcome o = shell(mpirun(2, "-x RILL_DIST_WORKER=1") + " " + self +
                              " --gtest_filter=Distributed.MpiWorker --gtest_color=no",
                          dir.str(), 60);
  EXPECT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("[  PASSED  ] 1 test"), std::string::npos) << o.output;
}

// `mpirun -np 2 rill train` against `rill train` in one process with the same global batch and
// grad_shards: the checkpoint (weights, optimiser, carried state, RNGs, data position) and every
// logged loss are the same bits: f64 with 2 shards, f32 with dropout and 4 shards.
TEST(Distributed, TwoRanksTrainAsOneProcess) {
  RILL_SKIP_WITHOUT_MPI();
  TempDir dir;
  prepare_pattern_corpus(dir / "data");
  struct Case {
    std::string dtype;
    double dropout;
    int64_t shards;
  };
  for (const Case& c : {Case{"f64", 0.0, 2}, Case{"f32", 0.1, 4}}) {
    const std::string what = c.dtype + " with " + std::to_string(c.shards) + " shards";
    const std::string config =
        write_config(dir.str(), c.dtype, tiny(dir.str(), c.dtype, c.dropout));
    const std::string shards = fmt::format(" --grad-shards {}", c.shards);
    const Outcome one =
        shell(rill_alone("train --config " + config + " --out one" + c.dtype + shards), dir.str());
    ASSERT_EQ(one.code, 0) << one.output;
    const Outcome two = shell(
        mpirun(2) + " " + RILL_CLI + " train --config " + config + " --out two" + c.dtype + shards,
        dir.str());
    ASSERT_EQ(two.code, 0) << two.output;
    EXPECT_NE(two.output.find("2 ranks (mpi), " + std::to_string(c.shards) + " gradient shards"),
              std::string::npos)
        << two.output;
    // Rank 0 alone reports: one summary line.
    EXPECT_EQ(two.output.find("trained 8 steps"), two.output.rfind("trained 8 steps"))
        << two.output;
    expect_same_run(read_saved(dir / ("one" + c.dtype + "/checkpoint.safetensors")),
                    read_saved(dir / ("two" + c.dtype + "/checkpoint.safetensors")), what);
    EXPECT_EQ(logged_losses(dir / ("one" + c.dtype)), logged_losses(dir / ("two" + c.dtype)))
        << what;
    if (c.dropout > 0) {
      const Saved s = read_saved(dir / ("two" + c.dtype + "/checkpoint.safetensors"));
      ASSERT_FALSE(s.progress.rngs.empty()) << "dropout draws from no generator";
    }
  }
}

// A rank killed mid-run (SIGKILL) ends the job within a bounded time, non-zero, with mpirun's
// line naming the rank and a line from the surviving rank; the checkpoint it left resumes on
// two ranks and on one, and both end bitwise as the run that was never interrupted.
TEST(Distributed, KilledRankEndsTheJobAndTheRunResumesOnAnyRankCount) {
  RILL_SKIP_WITHOUT_MPI();
  TempDir dir;
  prepare_pattern_corpus(dir / "data");
  TrainConfig cfg = tiny(dir.str(), "f32");
  cfg.steps = 300, cfg.eval_every = 100, cfg.checkpoint_every = 5;
  const std::string config = write_config(dir.str(), "long", cfg);
  const std::string train2 = mpirun(2) + " " + RILL_CLI + " train --config " + config;

  const Outcome whole = shell(train2 + " --out whole", dir.str());
  ASSERT_EQ(whole.code, 0) << whole.output;

  // The run to kill, tagged so that its rank 1 can be found among this machine's processes.
  const std::string tag = fmt::format("rill-test-{}", getpid());
  const std::string out = dir.str() + "/killed";
  const std::string log = dir.str() + "/killed_output.txt";
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t job = fork();
  if (job == 0) {
    const std::string full = fmt::format("cd {} && exec {} > {} 2>&1", dir.str(),
                                         mpirun(2, "-x RILL_TEST_TAG=" + tag) + " " + RILL_CLI +
                                             " train --config " + config + " --out killed",
                                         log);
    execl("/bin/sh", "sh", "-c", full.c_str(), (char*)nullptr);
    _exit(127);
  }
  auto rank1 = [&]() -> pid_t {
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(e.path() / "environ", std::ios::binary);
      const std::string env(std::istreambuf_iterator<char>(in), {});
      if (env.find("RILL_TEST_TAG=" + tag) != std::string::npos &&
          env.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') != std::string::npos &&
          read_text((e.path() / "comm").string()).rfind("rill", 0) == 0)
        return pid_t(std::stol(name));
    }
    return 0;
  };
  // Kill rank 1 once rank 0 has written a checkpoint (step 5), long before step 300.
  pid_t victim = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    if (fs::exists(out + "/checkpoint.safetensors") && (victim = rank1()) != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(victim, 0) << "no rank 1 of the job was found after its first checkpoint (did it "
                          "finish first?): "
                       << read_text(log);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto killed_at = std::chrono::steady_clock::now();
  int status = 0;
  bool ended = false;
  while (std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(60))
    if (waitpid(job, &status, WNOHANG) == job) {
      ended = true;
      break;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  if (!ended) {
    kill(job, SIGKILL);
    waitpid(job, &status, 0);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  const std::string said = read_text(log);
  ASSERT_TRUE(ended) << "the job was still running 60 s after a rank was killed: " << said;
  EXPECT_LT(seconds, 60);
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << said;
  EXPECT_NE(said.find("process rank 1"), std::string::npos) << said;
  EXPECT_NE(said.find("signal 9"), std::string::npos) << said;
  EXPECT_NE(said.find("rill: rank 0 of 2: ended by SIGTERM after training step"), std::string::npos)
      << said;
  std::cout << "the job ended " << seconds << " s after rank 1 was killed\n";

  // Resume the killed job's checkpoint on two ranks, and a copy of it on one process.
  const Saved left = read_saved(out + "/checkpoint.safetensors");
  ASSERT_GT(left.progress.step, 0);
  ASSERT_LT(left.progress.step, 300) << "the run finished before it was killed";
  fs::copy(out, dir / "killed_one", fs::copy_options::recursive);
  const Outcome on_two = shell(train2 + " --out killed --resume", dir.str());
  ASSERT_EQ(on_two.code, 0) << on_two.output;
  const Outcome on_one =
      shell(rill_alone("train --config " + config + " --out killed_one --resume"), dir.str());
  ASSERT_EQ(on_one.code, 0) << on_one.output;
  const Saved reference = read_saved(dir / "whole/checkpoint.safetensors");
  const std::string from = " resumed from step " + std::to_string(left.progress.step);
  expect_same_run(read_saved(out + "/checkpoint.safetensors"), reference, "two ranks" + from);
  expect_same_run(read_saved(dir / "killed_one/checkpoint.safetensors"), reference,
                  "one process" + from);
}

// An error on the ranks (here a config every rank refuses) ends the job promptly and non-zero,
// each rank naming itself and the bad value; a rill under mpirun with --comm local refuses.
TEST(Distributed, AnErrorEndsTheJobOnEveryRank) {
  RILL_SKIP_WITHOUT_MPI();
  TempDir dir;
  prepare_pattern_corpus(dir / "data");
  const std::string config = write_config(dir.str(), "cfg", tiny(dir.str(), "f32"));
  const Outcome bad =
      shell(mpirun(2) + " " + RILL_CLI + " train --config " + config + " --out bad --grad-shards 3",
            dir.str(), 60);
  EXPECT_NE(bad.code, 0) << bad.output;
  EXPECT_LT(bad.seconds, 30) << bad.output;
  for (const char* rank : {"rank 0 of 2", "rank 1 of 2"})
    EXPECT_NE(bad.output.find(fmt::format("error: {}: [config] the training config: "
                                          "\"grad_shards\" is 3",
                                          rank)),
              std::string::npos)
        << bad.output;
  const Outcome local =
      shell(mpirun(2) + " " + RILL_CLI + " train --config " + config + " --out local --comm local",
            dir.str(), 60);
  EXPECT_NE(local.code, 0) << local.output;
  EXPECT_NE(local.output.find("--comm local, but Open MPI started this process as rank"),
            std::string::npos)
      << local.output;
  EXPECT_FALSE(fs::exists(dir / "local/checkpoint.safetensors"));
}
