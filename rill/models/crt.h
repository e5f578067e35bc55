// The Compact Recurrent Transformer (Mucllari et al. 2025; papers/aaren-crt.md §3), model type
// "crt": a shallow causal transformer (crt_layer.h) over segments of L tokens, and one memory
// vector carried from segment to segment by an RNN cell. Shapes: B batch, T time, D d_model,
// H heads, Dh head_dim, L segment, V vocabulary.
//
//   segment n, tokens X_n [B, L, D]:  rows = [ m_{n-1} ; X_n ]      (the memory slot is row 0)
//   H_n = layers(rows), causal: every token sees the memory slot and the tokens before it
//   logits = head(H_n[1:])
//   m_n = cell(summary(H_n), m_{n-1})     cell: "gru" (PyTorch's GRUCell) or "nc_gru"
//                                         (nn/nc_gru_cell.h: an orthogonal Cayley recurrence)
//
// The choices the paper leaves open are switches (papers/aaren-crt.md §3.2):
//   "summary"    what the cell reads at a segment's end:
//                "last"   the last token's output (it has seen the whole segment);
//                "write"  a write slot: m_{n-1} plus a learned write embedding, one more row after
//                         the last token, attending to the whole segment; its output (RMT's write
//                         tokens, with one token). The memory slot's own output is not offered:
//                         under the causal mask it sees only itself, so it carries no segment
//                         information; the write slot is that idea made causal;
//                "rnn"    the cell runs over all L outputs, starting from m_{n-1}: m_n is its
//                         hidden state after the last one.
//   "positions"  "rotary" (on q and k, at the rows' positions within the segment), "learned"
//                (an absolute table over the segment's rows, added to the inputs) or "none".
//   "bptt_segments"  how far gradients flow back through the memory: 0 = through every segment
//                of a training sequence (the trainer cuts between sequences), k = the memory is
//                detached every k segments (1: no gradient from one segment into an earlier one).
//   "memory"     "gru", "nc_gru" or "none" (no memory slot: the plain segment transformer, the
//                baseline at full-length segments); "clear_memory": true reads the learned initial
//                memory in every segment (the control that shows what the memory carries).
//
// Segments follow one clock shared by the streams of a state: a segment ends every L tokens since
// init_state, so any cut of a stream into calls gives the same outputs. A reset (a document start;
// forward_with_resets, step_with_resets) gives the stream the initial memory and hides the
// segment's earlier tokens from it; at a segment boundary that is exactly a fresh stream.
//
// State, constant in size:
//   pos [B] i64                 tokens since init_state (equal in every stream: the clock)
//   start [B] i64               the position of each stream's first visible token
//   memory [B, D]               m_{n-1}, the memory the current segment reads (not with "none")
//   running [B, D]              "rnn" summary: the cell's hidden over the segment's outputs so far
//   layers.i.keys, .values      [B, H, L + 1, Dh] ([B, H, L, Dh] without a memory): the memory
//                               slot's and the segment's tokens' rows so far, then zeros
// The step form is the same computation on one token, with these L + 1 rows as its KV cache.
//
// Config (strict):
//   {"type": "crt", "segment": 70, "d_model": 256, "n_layers": 3, "heads": 4, "head_dim": 0,
//    "mlp_hidden": 1024, "mlp": "gelu", "norm": "layer", "memory": "gru", "summary": "last",
//    "positions": "rotary", "bptt_segments": 0, "clear_memory": false, "negative_ones": 0,
//    "tie_embeddings": true, "dtype": "f32", "vocab": 256, "out_dim": 256}
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "rill/models/crt_layer.h"
#include "rill/models/token_step_model.h"
#include "rill/nn/embedding.h"
#include "rill/nn/nc_gru_cell.h"
#include "rill/nn/rnn_cells.h"

namespace rill {

enum class CrtMemory { gru, nc_gru, none };
enum class CrtSummary { last, write, rnn };
enum class CrtPositions { rotary, learned, none };

struct CrtConfig {
  ModelIO io{256, 0, 256};
  int64_t segment = 70;  // L
  int64_t d_model = 256, n_layers = 3, heads = 4, head_dim = 0, mlp_hidden = 1024;
  nn::MLPKind mlp = nn::MLPKind::gelu;
  nn::NormKind norm = nn::NormKind::layer;
  CrtMemory memory = CrtMemory::gru;
  CrtSummary summary = CrtSummary::last;
  CrtPositions positions = CrtPositions::rotary;
  int64_t bptt_segments = 0;
  bool clear_memory = false;
  int64_t negative_ones = 0;  // nc_gru: the -1 entries of the Cayley transform's diagonal D
  bool tie_embeddings = true;
  DType dtype = DType::f32;

  static CrtConfig from_json(const nlohmann::json& j, const ModelIO& io = {});
  nlohmann::json to_json() const;
  int64_t pinned() const { return memory == CrtMemory::none ? 0 : 1; }  // memory slot rows
};

class CrtModel : public TokenStepModel {
 public:
  CrtModel(const CrtConfig& config, uint64_t seed);

  State init_state(int64_t batch) const override;
  Tensor forward(const Tensor& ids, State* state) override;  // [B, T] -> [B, T, V]
  Tensor forward_with_resets(const Tensor& ids, State* state, const Tensor& resets) override;
  ModelInfo info(int64_t context) const override;
  const ModelIO& io() const override { return config.io; }
  nlohmann::json config_json() const override { return config.to_json(); }

  // The learned initial memory for B streams: [B, D].
  Tensor initial_memory_for(int64_t batch) const;
  // The memory cell's parameters (empty with memory "none").
  std::vector<Tensor> memory_cell_parameters() const;

  CrtConfig config;
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::Embedding> positions;  // "learned": [L + 2, D], rows of the segment
  std::vector<std::shared_ptr<CrtLayer>> layers;
  std::shared_ptr<nn::Norm> final_norm;
  std::shared_ptr<nn::Linear> out_proj;   // null when tied to the embedding
  std::shared_ptr<nn::GRUCell> gru;       // memory "gru"
  std::shared_ptr<nn::NCGRUCell> nc_gru;  // memory "nc_gru"
  Tensor initial_memory;                  // [D] m_0
  Tensor write_embedding;                 // [D] summary "write": added to m_{n-1}

 private:
  struct Run;  // the state unpacked for one call (crt.cpp)
  Run load(const State& state, int64_t batch) const;
  void save(const Run& r, State& state) const;
  // The tokens h [B, n, D] of one segment (no reset after the first): their normed outputs.
  Tensor run(const Tensor& h, Run& r) const;
  void begin_segment(Run& r) const;
  void end_segment(Run& r, const Tensor& normed) const;
  // Per stream, the end of the rows it must not see (a restart inside the segment hides the
  // segment's earlier tokens); empty when every stream sees them all.
  std::vector<int64_t> hidden_rows(const Run& r) const;
  double cell_flops() const;  // one memory-cell step
  void reset_lanes(Run& r, const std::vector<float>& lanes) const;
  Tensor memory_rows(const Tensor& memory, std::vector<Tensor>& keys,
                     std::vector<Tensor>& values) const;
  // The memory cell: [B, D] input and memory -> the next memory.
  Tensor cell(const Tensor& input, const Tensor& memory, Run& r) const;
  Tensor with_positions(const Tensor& x, int64_t first) const;  // "learned" adds the table
  Tensor head(const Tensor& h) const;                           // [B, T, D] -> [B, T, V]
  void check_state(const State& state, int64_t batch) const;
  Shape cache_shape(int64_t batch) const;  // [B, H, pinned + L, Dh]
};

}  // namespace rill
