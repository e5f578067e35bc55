// Kernel bodies of weight_gemm, written once against a vector traits type S and compiled once per
// ISA: weight_gemm_avx2.cpp and weight_gemm_avx512.cpp include this file inside their own
// anonymous namespace after `#pragma GCC target`. No include guard and no includes on purpose.
//
// Layout and blocking. A tile is MR rows of x by NPAN panels of 16 output channels, its MR x
// (NPAN * 16 / S::L) accumulators held in registers over the whole of K: per k it loads NPAN x 16
// weights once (converting bf16 / int8 to f32 in registers) and applies them to the MR rows, each
// row's x[k] broadcast from memory, from x's own rows (the dot kernel: from x's bf16 parts, packed
// k-major by row block). The call's rows are cut into as few blocks as the largest tile allows;
// tiles run panel group by panel group, and within a group over every row block, so a group's
// weights come from L3 (or memory) once per call and from L1 / L2 for the other blocks. Every
// output element is one chain of FMAs in k order (pairs of k for the bf16 dot product) started
// at 0, then * scale (int8), + bias, + y (accumulate): its value depends neither on the tile
// shape nor on which thread runs it.

enum class Fmt { f32, bf16, int8, bf16_dot };

template <class S>
struct Impl {
  using V = typename S::V;
  static constexpr int L = S::L;      // floats per vector
  static constexpr int VPP = 16 / L;  // vectors per panel
  static_assert(VPP * L == 16, "a panel is 16 channels");

  // Stores the finished tile: lanes past N are not written.
  template <Fmt F, int MR, int NV>
  [[gnu::always_inline]] static inline void write_back(const WeightGemmCall& c, int64_t b0,
                                                       int64_t n0, V (&acc)[MR][NV]) {
    const int64_t valid = c.N - n0;
#pragma GCC unroll 32
    for (int j = 0; j < NV; ++j) {
      const int64_t cnt = valid - j * L;
      if (cnt <= 0) break;
      const int64_t n = n0 + j * L;
      const int m = cnt >= L ? L : static_cast<int>(cnt);
      V scale, bias;
      if constexpr (F == Fmt::int8) scale = S::load(c.scales + n);
      if (c.bias) bias = m == L ? S::load(c.bias + n) : S::load_n(c.bias + n, m);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        V v = acc[r][j];
        if constexpr (F == Fmt::int8) v = S::mul(v, scale);
        if (c.bias) v = S::add(v, bias);
        float* yp = c.y + (b0 + r) * c.ldy + n;
        if (m == L) {
          if (c.accumulate) v = S::add(v, S::load(yp));
          S::store(yp, v);
        } else {
          if (c.accumulate) v = S::add(v, S::load_n(yp, m));
          S::store_n(yp, v, m);
        }
      }
    }
  }

  // One pair of k (2i, 2i + 1; only 2i when kOdd is false) of a bf16 tile, x read from its rows.
  // With 32 registers (S::kBf16OnePass) both halves of the pairs are converted first and each
  // row takes both, in one pass over the rows. With 16, the even halves are converted and applied
  // to every row, then the odd halves, so that NV converted vectors live at once; but two passes
  // keep every row pointer live across the pair, which at 32 registers cost up to 25 reloads a
  // pair for 7 x 2 tiles.
  template <int MR, int NPAN, bool kOdd>
  [[gnu::always_inline]] static inline void bf16_pair(const uint16_t* const (&w)[NPAN],
                                                      const float* x, int64_t ldx, int64_t i,
                                                      V (&acc)[MR][NPAN * VPP]) {
    constexpr int NV = NPAN * VPP;
    if constexpr (MR == 1) {  // each converted vector is used once: convert it where it is used
#pragma GCC unroll 2
      for (int half = 0; half < (kOdd ? 2 : 1); ++half) {
        const V xb = S::bcast(x + 2 * i + half);
#pragma GCC unroll 8
        for (int q = 0; q < NPAN; ++q)
#pragma GCC unroll 8
          for (int v = 0; v < VPP; ++v) {
            const uint16_t* pw = w[q] + (i * 16 + v * L) * 2;
            acc[0][q * VPP + v] =
                S::fmadd(xb, half == 0 ? S::bf16_even(pw) : S::bf16_odd(pw), acc[0][q * VPP + v]);
          }
      }
      return;
    }
    if constexpr (S::kBf16OnePass && kOdd) {  // registers for both halves: one pass over rows
      V ev[NV], od[NV];
#pragma GCC unroll 8
      for (int q = 0; q < NPAN; ++q)
#pragma GCC unroll 8
        for (int v = 0; v < VPP; ++v) {
          const uint16_t* pw = w[q] + (i * 16 + v * L) * 2;
          ev[q * VPP + v] = S::bf16_even(pw);
          od[q * VPP + v] = S::bf16_odd(pw);
        }
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const V xe = S::bcast(x + r * ldx + 2 * i), xo = S::bcast(x + r * ldx + 2 * i + 1);
#pragma GCC unroll 32
        for (int j = 0; j < NV; ++j) {
          acc[r][j] = S::fmadd(xe, ev[j], acc[r][j]);
          acc[r][j] = S::fmadd(xo, od[j], acc[r][j]);
        }
      }
      return;
    }
#pragma GCC unroll 2
    for (int half = 0; half < (kOdd ? 2 : 1); ++half) {
      V wv[NV];
#pragma GCC unroll 8
      for (int q = 0; q < NPAN; ++q)
#pragma GCC unroll 8
        for (int v = 0; v < VPP; ++v) {
          const uint16_t* pw = w[q] + (i * 16 + v * L) * 2;
          wv[q * VPP + v] = half == 0 ? S::bf16_even(pw) : S::bf16_odd(pw);
        }
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const V xb = S::bcast(x + r * ldx + 2 * i + half);
#pragma GCC unroll 32
        for (int j = 0; j < NV; ++j) acc[r][j] = S::fmadd(xb, wv[j], acc[r][j]);
      }
    }
  }

  // One tile: rows [b0, b0 + MR) of x, panels [p, p + NPAN). The x values are broadcast from
  // x's own rows (x0 = x + b0 ldx; the row pointers are loop-invariant), or for the dot kernel
  // from its packed parts.
  template <Fmt F, int MR, int NPAN>
  static void tile(const WeightGemmCall& c, const float* x0, int64_t b0, int64_t p) {
    const int64_t ldx = c.ldx;
    constexpr int NV = NPAN * VPP;
    const int64_t K = c.K;
    V acc[MR][NV];
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 32
      for (int j = 0; j < NV; ++j) acc[r][j] = S::zero();

    if constexpr (F == Fmt::f32 || F == Fmt::int8) {
      using W = std::conditional_t<F == Fmt::f32, float, int8_t>;
      const W* w[NPAN];
#pragma GCC unroll 8
      for (int q = 0; q < NPAN; ++q) w[q] = static_cast<const W*>(c.panels) + (p + q) * K * 16;
      for (int64_t k = 0; k < K; ++k) {
        V wv[NV];
#pragma GCC unroll 8
        for (int q = 0; q < NPAN; ++q)
#pragma GCC unroll 8
          for (int v = 0; v < VPP; ++v) {
            if constexpr (F == Fmt::f32)
              wv[q * VPP + v] = S::load(w[q] + k * 16 + v * L);
            else
              wv[q * VPP + v] = S::load_i8(w[q] + k * 16 + v * L);
          }
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) {
          const V xb = S::bcast(x0 + r * ldx + k);
#pragma GCC unroll 32
          for (int j = 0; j < NV; ++j) acc[r][j] = S::fmadd(xb, wv[j], acc[r][j]);
        }
      }
    } else if constexpr (F == Fmt::bf16) {
      // Pairs of k: each 32-bit lane holds (W[n, 2i], W[n, 2i+1]); a shift and a mask give the
      // two f32 values exactly. k = 2i goes into the chain before k = 2i + 1.
      const int64_t K2 = (K + 1) / 2;
      const uint16_t* w[NPAN];
#pragma GCC unroll 8
      for (int q = 0; q < NPAN; ++q)
        w[q] = static_cast<const uint16_t*>(c.panels) + (p + q) * K2 * 32;
      for (int64_t i = 0; i < K / 2; ++i) bf16_pair<MR, NPAN, true>(w, x0, ldx, i, acc);
      if (K % 2) bf16_pair<MR, NPAN, false>(w, x0, ldx, K / 2, acc);  // the last k, alone
    } else {
      S::template dot_tile<MR, NPAN>(c, x0, p, acc);
    }
    write_back<F, MR, NV>(c, b0, p * 16, acc);
  }

  using TileFn = void (*)(const WeightGemmCall&, const float*, int64_t, int64_t);

  template <Fmt F, int NPAN, int... I>
  static constexpr std::array<TileFn, sizeof...(I)> tiles(std::integer_sequence<int, I...>) {
    return {&tile<F, I + 1, NPAN>...};
  }

  // Where row block i's x starts: x's own rows, or the dot kernel's packed parts.
  static const float* x_block(const WeightGemmCall& c, int64_t i) {
    return c.xp ? c.xp + c.block_off[i] : c.x + c.row0[i] * c.ldx;
  }

  // Panel groups as wide as the tile shape for the call's largest row block allows (S::kNpanA
  // panels for blocks up to S::kMrA rows, S::kNpanB up to S::kMrB, else 1), single panels for what
  // is left at the end; within a group, every row block, so that the group's weights come from L3
  // once and from L1 / L2 for the other blocks.
  template <Fmt F>
  static void panels(const WeightGemmCall& c, int64_t p0, int64_t p1) {
    static constexpr auto tier_a = tiles<F, S::kNpanA>(std::make_integer_sequence<int, S::kMrA>());
    static constexpr auto tier_b = tiles<F, S::kNpanB>(std::make_integer_sequence<int, S::kMrB>());
    static constexpr auto one = tiles<F, 1>(std::make_integer_sequence<int, S::kMrMax>());
    int64_t max_mr = 0;
    for (int64_t i = 0; i < c.blocks; ++i) max_mr = std::max(max_mr, c.row0[i + 1] - c.row0[i]);
    const TileFn* tier = max_mr <= S::kMrA   ? tier_a.data()
                         : max_mr <= S::kMrB ? tier_b.data()
                                             : one.data();
    const int64_t g = max_mr <= S::kMrA ? S::kNpanA : max_mr <= S::kMrB ? S::kNpanB : 1;
    int64_t p = p0;
    for (; p + g <= p1; p += g)
      for (int64_t i = 0; i < c.blocks; ++i)
        tier[c.row0[i + 1] - c.row0[i] - 1](c, x_block(c, i), c.row0[i], p);
    for (; p < p1; ++p)
      for (int64_t i = 0; i < c.blocks; ++i)
        one[c.row0[i + 1] - c.row0[i] - 1](c, x_block(c, i), c.row0[i], p);
  }
};
