// The training loop: truncated backpropagation through time over contiguous segments (the
// recurrent state is carried from one segment to the next and detached), AdamW with warm-up
// and cosine decay, gradient clipping, periodic validation, a JSONL metrics log and an SVG
// plot, checkpoints every N steps and on Ctrl-C, and exact resume.
// Files in out_dir: config.json, checkpoint.safetensors, metrics.jsonl, curves.svg.
#pragma once
#include <string>

#include "rill/data/corpus.h"
#include "rill/models/language_model.h"
#include "rill/train/train_config.h"

namespace rill {

struct TrainResult {
  int64_t steps = 0;        // optimiser steps done in total
  double train_loss = 0;    // mean of the last logged window (nats per token)
  double valid_loss = 0;    // nats per token on the validation split
  double valid_metric = 0;  // bits per byte (bytes) or perplexity (words)
  std::string metric_name;  // "bits/byte" or "perplexity"
  double seconds = 0;
  double tokens_per_s = 0;
  bool interrupted = false;  // stopped by Ctrl-C (a checkpoint was written)
};

// When a segment starts from a fresh state: never carrying, or every reset_every segments.
struct CarryPolicy {
  bool carry = true;
  int64_t reset_every = 0;  // 0: never reset while carrying
  bool fresh(uint64_t segment) const {
    return !carry || (reset_every > 0 && segment % reset_every == 0);
  }
};

// Mean next-token loss (nats) over the first `segments` segments of `tokens`, with `batch`
// lanes and the state carried across segments as the policy says (as in training). No tape.
double evaluate(LanguageModel& model, const data::TokenFile& tokens, int64_t batch, int64_t seq,
                int64_t segments, const CarryPolicy& carry = {});

// The metric a person reads for a loss: bits per byte for the byte tokenizer, else perplexity.
double readable_metric(double loss_nats, data::TokenizerKind kind);
const char* readable_metric_name(data::TokenizerKind kind);

// The model description a checkpoint carries (and that generate/eval rebuild the model from).
nlohmann::json checkpoint_model_config(const TrainConfig& config, data::TokenizerKind kind);

TrainResult train(const TrainConfig& config, bool resume);

}  // namespace rill
