// Kernel bodies of weight_gemm, written once against a vector traits type S and compiled once per
// ISA: weight_gemm_avx2.cpp and weight_gemm_avx512.cpp include this file inside their own
// anonymous namespace after `#pragma GCC target`. No include guard and no includes on purpose.
//
// Layout and blocking. A tile is MR rows of x by NPAN panels of 16 output channels, its MR x
// (NPAN * 16 / S::L) accumulators held in registers over the whole of K: per k it loads NPAN x 16
// weights once (converting bf16 / int8 to f32 in registers) and applies them to the MR rows, whose
// x values are broadcast from the packed row block (k-major, so one pointer and constant offsets
// serve all rows). Tiles run panel group by panel group, and within a group over every row block,
// so a group's weights come from L3 (or memory) once per call and from L1/L2 for the other
// blocks. Every output element is one chain of FMAs in k order (pairs of k for the bf16 dot
// product) started at 0, then * scale (int8), + bias, + y (accumulate): its value depends neither
// on the tile shape nor on which thread runs it.

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
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) {
      const int64_t cnt = valid - j * L;
      if (cnt <= 0) break;
      const int64_t n = n0 + j * L;
      const int m = cnt >= L ? L : static_cast<int>(cnt);
      V scale, bias;
      if constexpr (F == Fmt::int8) scale = S::load(c.scales + n);
      if (c.bias) bias = m == L ? S::load(c.bias + n) : S::load_n(c.bias + n, m);
#pragma GCC unroll 16
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

  // One pair of k (2i, 2i + 1; only 2i when kOdd is false) of a bf16 tile. One vector of pairs
  // at a time, its even half applied to every row before the odd half is made: two converted
  // vectors live at once, not 2 x NV (which spills at 6 rows x 4 panels).
  template <int MR, int NPAN, bool kOdd>
  [[gnu::always_inline]] static inline void bf16_pair(const uint16_t* const (&w)[NPAN],
                                                      const float* xp, int64_t i,
                                                      V (&acc)[MR][NPAN * VPP]) {
#pragma GCC unroll 8
    for (int q = 0; q < NPAN; ++q)
#pragma GCC unroll 8
      for (int v = 0; v < VPP; ++v) {
        const int j = q * VPP + v;
        V ev, od;
        S::load_bf16_pair(w[q] + (i * 16 + v * L) * 2, ev, od);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r)
          acc[r][j] = S::fmadd(S::bcast(xp + 2 * i * MR + r), ev, acc[r][j]);
        if constexpr (kOdd) {
#pragma GCC unroll 16
          for (int r = 0; r < MR; ++r)
            acc[r][j] = S::fmadd(S::bcast(xp + (2 * i + 1) * MR + r), od, acc[r][j]);
        }
      }
  }

  // One tile: rows [b0, b0 + MR) of x (packed at xp, k-major), panels [p, p + NPAN).
  template <Fmt F, int MR, int NPAN>
  static void tile(const WeightGemmCall& c, const float* xp, int64_t b0, int64_t p) {
    constexpr int NV = NPAN * VPP;
    const int64_t K = c.K;
    V acc[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
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
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const V xb = S::bcast(xp + k * MR + r);
#pragma GCC unroll 16
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
      for (int64_t i = 0; i < K / 2; ++i) bf16_pair<MR, NPAN, true>(w, xp, i, acc);
      if (K % 2) bf16_pair<MR, NPAN, false>(w, xp, K / 2, acc);  // the last k, alone
    } else {
      S::template dot_tile<MR, NPAN>(c, xp, p, acc);
    }
    write_back<F, MR, NV>(c, b0, p * 16, acc);
  }

  using TileFn = void (*)(const WeightGemmCall&, const float*, int64_t, int64_t);

  template <Fmt F, int NPAN, int... I>
  static constexpr std::array<TileFn, sizeof...(I)> tiles(std::integer_sequence<int, I...>) {
    return {&tile<F, I + 1, NPAN>...};
  }

  // Panel groups of S::npan(mr) panels (single panels for what is left at the end), and within a
  // group every row block.
  template <Fmt F>
  static void panels(const WeightGemmCall& c, int64_t p0, int64_t p1) {
    static constexpr auto wide =
        tiles<F, S::kNpanSmall>(std::make_integer_sequence<int, S::kMrSmall>());
    static constexpr auto mid =
        tiles<F, S::kNpanLarge>(std::make_integer_sequence<int, S::kMrMax>());
    static constexpr auto one = tiles<F, 1>(std::make_integer_sequence<int, S::kMrMax>());
    // Every block of a call shares one group width, so that the groups' bounds (and the blocks
    // they are reused by) line up.
    int64_t max_mr = 0;
    for (int64_t i = 0; i < c.blocks; ++i) max_mr = std::max(max_mr, c.row0[i + 1] - c.row0[i]);
    const bool small = max_mr <= S::kMrSmall;
    const int64_t g = small ? S::kNpanSmall : S::kNpanLarge;
    int64_t p = p0;
    for (; p + g <= p1; p += g)
      for (int64_t i = 0; i < c.blocks; ++i) {
        const int64_t mr = c.row0[i + 1] - c.row0[i];
        (small ? wide[mr - 1] : mid[mr - 1])(c, c.xp + c.block_off[i], c.row0[i], p);
      }
    for (; p < p1; ++p)
      for (int64_t i = 0; i < c.blocks; ++i) {
        const int64_t mr = c.row0[i + 1] - c.row0[i];
        one[mr - 1](c, c.xp + c.block_off[i], c.row0[i], p);
      }
  }
};
