// Attention with RMT's Manhattan decay computed inside the kernel, forward and backward, fp32 CPU.
//
//   out_i = sum_j softmax_j(scale * q_i . k_j + rate * dist(i, j)) v_j
//
// with dist(i, j) = |i - j| along one axis (the decomposed MaSA's width and height passes), or
// the Manhattan distance |y_i - y_j| + |x_i - x_j| of raster-ordered tokens on a grid of
// `grid_width` columns (full MaSA). PyTorch's CPU flash kernel spends most of its time outside
// the products for RMT's 16- and 32-channel heads (its blocks are GEMM calls with K = 16 and an
// additive mask read back from memory). Here one (sequence, head) at a time is packed into the
// L1/L2 cache and a block of queries is scored against it in registers: the logits, the decay
// and the softmax never leave the cache, and the decay is computed from the token indices, so no
// mask is read. The loops are written with GCC vector types of 16 floats, which each
// `target_clones` clone lowers to AVX-512, AVX2 or SSE.
#include <torch/extension.h>

#include "simd.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <utility>
#include <vector>

namespace {

using namespace mmrmt::simd;

// A (tokens, channels) operand of one (sequence, head): row `t` at `data + t * stride`.
struct Rows {
  const float* data;
  int64_t stride;
};

// The same for an output.
struct OutRows {
  float* data;
  int64_t stride;
};

// The rows of the next (sequence, head), fetched into L2 a few at a time while the current one
// is computed. A head's rows lie far apart (the height pass strides whole image rows), so their
// first touch is a cache miss, often a TLB miss too, that the packing loops would wait for.
struct RowPrefetch {
  static constexpr int kMaxOperands = 8;
  const char* data[kMaxOperands];
  int64_t stride[kMaxOperands];  // bytes
  bool written[kMaxOperands];
  int operands = 0;
  int64_t length = 0, lines = 0;
  int64_t next = 0;  // operand * length + token of the next row to fetch

  RowPrefetch(int64_t tokens, int64_t dim)
      : length(tokens), lines((dim * static_cast<int64_t>(sizeof(float)) + 63) / 64) {}

  void add(const float* rows, int64_t row_stride, bool write = false) {
    data[operands] = reinterpret_cast<const char*>(rows);
    stride[operands] = row_stride * static_cast<int64_t>(sizeof(float));
    written[operands++] = write;
  }

  // Rows to fetch per query block, for all of them to be fetched over `blocks` blocks.
  int64_t per_block(int64_t blocks) const { return (operands * length + blocks - 1) / blocks; }

  void issue(int64_t rows) {
    const int64_t stop = std::min(operands * length, next + rows);
    for (; next < stop; ++next) {
      const int64_t operand = next / length;
      const char* row = data[operand] + (next % length) * stride[operand];
      for (int64_t line = 0; line < lines; ++line) {
        if (written[operand]) {
          __builtin_prefetch(row + line * 64, 1, 2);
        } else {
          __builtin_prefetch(row + line * 64, 0, 2);
        }
      }
    }
  }
};

struct Geometry {
  int64_t length;      // tokens
  int64_t padded;      // tokens rounded up to kLanes
  int64_t grid_width;  // 0: one axis, dist = |i - j|; else raster tokens of this many columns
  float rate;          // log(gamma) of the head
  float scale;         // logit scaling
};

// Per-thread buffers for one (sequence, head) at a time.
struct Scratch {
  std::vector<float> key_columns, value_columns, key_rows, value_rows, grad_key, grad_value;
  std::vector<float> probs, grads, key_y, key_x;
  // Along one axis, decay_line[m] = rate * |m - padded|: the decay of query i and key j is
  // decay_line[j - i + padded], one load instead of a distance computed per pair.
  std::vector<float> decay_line;

  Scratch(const Geometry& g, int64_t dim, int64_t block, bool backward)
      : key_columns(g.padded * dim, 0.f),
        value_rows(g.padded * dim, 0.f),
        probs(block * g.padded, 0.f),
        key_y(g.padded, 0.f),
        key_x(g.padded, 0.f),
        decay_line(2 * g.padded + kLanes, 0.f) {
    if (backward) {
      value_columns.assign(g.padded * dim, 0.f);
      key_rows.assign(g.padded * dim, 0.f);
      grad_key.assign(g.padded * dim, 0.f);
      grad_value.assign(g.padded * dim, 0.f);
      grads.assign(block * g.padded, 0.f);
    }
    // Token coordinates as floats, so that the distance is vector arithmetic.
    for (int64_t t = 0; t < g.padded; ++t) {
      key_y[t] = g.grid_width ? static_cast<float>(t / g.grid_width) : 0.f;
      key_x[t] = static_cast<float>(g.grid_width ? t % g.grid_width : t);
    }
  }

  // Fill the head's decay line (one axis only).
  void set_head(const Geometry& g) {
    if (g.grid_width) return;
    for (int64_t m = 0; m < static_cast<int64_t>(decay_line.size()); ++m)
      decay_line[m] = g.rate * static_cast<float>(std::abs(m - g.padded));
  }
};

// (length, Dim) rows with a stride -> (Dim, padded) columns; the padding columns stay zero.
template <int64_t Dim>
MMRMT_INLINE void pack_columns(const Rows& rows, int64_t length, int64_t padded, float* columns) {
  for (int64_t t = 0; t < length; ++t) {
    const float* row = rows.data + t * rows.stride;
    for (int64_t c = 0; c < Dim; ++c) columns[c * padded + t] = row[c];
  }
}

// (length, Dim) rows with a stride -> dense (length, Dim) rows.
template <int64_t Dim>
MMRMT_INLINE void pack_rows(const Rows& rows, int64_t length, float* packed) {
  for (int64_t t = 0; t < length; ++t)
    std::memcpy(packed + t * Dim, rows.data + t * rows.stride, Dim * sizeof(float));
}

template <int64_t Dim>
constexpr int64_t query_block() {
  return Dim <= 32 ? 8 : 4;
}

// Queries [first, first + Block) of a head, scaled; the slots past the sequence are zero and
// take the last query's position.
template <int64_t Dim, int64_t Block>
struct QueryBlock {
  float rows[Block][Dim];
  float y[Block];
  float x[Block];

  QueryBlock(const Rows& q, int64_t first, const Geometry& g) {
    for (int64_t b = 0; b < Block; ++b) {
      const int64_t i = std::min(first + b, g.length - 1);
      y[b] = g.grid_width ? static_cast<float>(i / g.grid_width) : 0.f;
      x[b] = static_cast<float>(g.grid_width ? i % g.grid_width : i);
      for (int64_t c = 0; c < Dim; ++c)
        rows[b][c] = first + b < g.length ? q.data[i * q.stride + c] * g.scale : 0.f;
    }
  }
};

// acc[b] = sum_c columns[c][j, j + 16) * rows[b][c]: `Block` rows of Dim values against 16 dense,
// transposed (Dim, padded) columns; each broadcast row value feeds one multiply-add.
template <int64_t Dim, int64_t Block>
MMRMT_INLINE void column_products(const float (&rows)[Block][Dim], const float* columns,
                                  int64_t padded, int64_t j, vec16 (&acc)[Block]) {
  for (int64_t c = 0; c < Dim; ++c) {
    const vec16 column = load(columns + c * padded + j);
    for (int64_t b = 0; b < Block; ++b) acc[b] += column * rows[b][c];
  }
}

// acc[b] = sum_t weights[b][t] * rows[t]: a block of (Block, padded) weights (probabilities or
// their gradients) times dense (length, Dim) rows.
template <int64_t Dim, int64_t Block>
MMRMT_INLINE void weighted_rows(const float* weights, int64_t padded, const float* rows,
                                int64_t length, vec16 (&acc)[Block][Dim / kLanes]) {
  constexpr int64_t Vecs = Dim / kLanes;
  for (int64_t b = 0; b < Block; ++b)
    for (int64_t u = 0; u < Vecs; ++u) acc[b][u] = splat(0.f);
  for (int64_t t = 0; t < length; ++t) {
    for (int64_t u = 0; u < Vecs; ++u) {
      const vec16 row = load(rows + t * Dim + u * kLanes);
      for (int64_t b = 0; b < Block; ++b) acc[b][u] += row * weights[b * padded + t];
    }
  }
}

// Logits of a query block against keys [j, j + 16): scaled products plus the decay, -inf for
// the padding keys (`bias`).
template <int64_t Dim, int64_t Block>
MMRMT_INLINE void score(const QueryBlock<Dim, Block>& queries, int64_t first, const Scratch& s,
                        int64_t j, const Geometry& g, bool last, vec16 bias,
                        vec16 (&logits)[Block]) {
  if (g.grid_width) {
    const vec16 key_y = load(s.key_y.data() + j), key_x = load(s.key_x.data() + j);
    for (int64_t b = 0; b < Block; ++b)
      logits[b] = (vabs(key_x - queries.x[b]) + vabs(key_y - queries.y[b])) * g.rate;
  } else {
    for (int64_t b = 0; b < Block; ++b) {
      const int64_t i = std::min(first + b, g.length - 1);
      logits[b] = load(s.decay_line.data() + j - i + g.padded);
    }
  }
  column_products<Dim, Block>(queries.rows, s.key_columns.data(), g.padded, j, logits);
  if (last)
    for (int64_t b = 0; b < Block; ++b) logits[b] += bias;
}

// 0 for the real keys of the last vector of keys, -inf for its padding.
MMRMT_INLINE vec16 tail_bias(const Geometry& g) {
  vec16 bias = splat(0.f);
  for (int64_t lane = 0; lane < kLanes; ++lane)
    if (g.padded - kLanes + lane >= g.length) bias[lane] = -std::numeric_limits<float>::infinity();
  return bias;
}

// One (sequence, head): writes its output rows, and the log-sum-exp of each query if `lse`.
template <int64_t Dim>
MMRMT_CLONES void forward_head(Rows q, Rows k, Rows v, OutRows out, float* lse, Geometry g,
                               Scratch& s, RowPrefetch& ahead) {
  constexpr int64_t Block = query_block<Dim>();
  constexpr int64_t Vecs = Dim / kLanes;
  const int64_t length = g.length, padded = g.padded;
  pack_columns<Dim>(k, length, padded, s.key_columns.data());
  pack_rows<Dim>(v, length, s.value_rows.data());
  const vec16 last_bias = tail_bias(g);
  s.set_head(g);
  float* probs = s.probs.data();
  const int64_t prefetch_rows = ahead.per_block((length + Block - 1) / Block);
  for (int64_t first = 0; first < length; first += Block) {
    ahead.issue(prefetch_rows);
    const QueryBlock<Dim, Block> queries(q, first, g);
    vec16 running_max[Block];
    for (int64_t b = 0; b < Block; ++b) running_max[b] = splat(-std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < padded; j += kLanes) {
      vec16 logits[Block];
      score<Dim, Block>(queries, first, s, j, g, j + kLanes == padded, last_bias, logits);
      for (int64_t b = 0; b < Block; ++b) {
        store(probs + b * padded + j, logits[b]);
        running_max[b] = vmax(running_max[b], logits[b]);
      }
    }
    float row_max[Block], row_sum[Block];
    for (int64_t b = 0; b < Block; ++b) {
      row_max[b] = hmax(running_max[b]);
      vec16 sum = splat(0.f);
      for (int64_t j = 0; j < padded; j += kLanes) {
        const vec16 p = vexp(load(probs + b * padded + j) - row_max[b]);
        store(probs + b * padded + j, p);
        sum += p;
      }
      row_sum[b] = hsum(sum);
    }
    vec16 acc[Block][Vecs];
    weighted_rows<Dim, Block>(probs, padded, s.value_rows.data(), length, acc);
    const int64_t count = std::min(Block, length - first);
    for (int64_t b = 0; b < count; ++b) {
      const float inverse = 1.f / row_sum[b];
      for (int64_t u = 0; u < Vecs; ++u)
        store(out.data + (first + b) * out.stride + u * kLanes, acc[b][u] * inverse);
      if (lse) lse[first + b] = row_max[b] + std::log(row_sum[b]);
    }
  }
}

// One (sequence, head) of the backward pass, from the forward's output and log-sum-exp.
template <int64_t Dim>
MMRMT_CLONES void backward_head(Rows q, Rows k, Rows v, Rows out, Rows grad_out,
                                const float* lse, OutRows grad_q, OutRows grad_k,
                                OutRows grad_v, bool accumulate_qk, Geometry g, Scratch& s,
                                RowPrefetch& ahead) {
  constexpr int64_t Block = query_block<Dim>();
  constexpr int64_t Vecs = Dim / kLanes;
  const int64_t length = g.length, padded = g.padded;
  pack_columns<Dim>(k, length, padded, s.key_columns.data());
  pack_columns<Dim>(v, length, padded, s.value_columns.data());
  pack_rows<Dim>(k, length, s.key_rows.data());
  std::fill(s.grad_key.begin(), s.grad_key.end(), 0.f);
  std::fill(s.grad_value.begin(), s.grad_value.end(), 0.f);
  const vec16 last_bias = tail_bias(g);
  s.set_head(g);
  float* probs = s.probs.data();
  float* grads = s.grads.data();
  const int64_t prefetch_rows = ahead.per_block((length + Block - 1) / Block);
  for (int64_t first = 0; first < length; first += Block) {
    ahead.issue(prefetch_rows);
    const int64_t count = std::min(Block, length - first);
    const QueryBlock<Dim, Block> queries(q, first, g);
    float grad_rows[Block][Dim];
    float row_lse[Block], row_delta[Block];
    for (int64_t b = 0; b < Block; ++b) {
      // Slots past the sequence have no output gradient (and probabilities of about 1e-38):
      // they add nothing to dK and dV.
      row_lse[b] = b < count ? lse[first + b] : std::numeric_limits<float>::infinity();
      row_delta[b] = 0.f;
      for (int64_t c = 0; c < Dim; ++c) {
        grad_rows[b][c] = b < count ? grad_out.data[(first + b) * grad_out.stride + c] : 0.f;
        if (b < count) row_delta[b] += grad_rows[b][c] * out.data[(first + b) * out.stride + c];
      }
    }
    for (int64_t j = 0; j < padded; j += kLanes) {
      vec16 logits[Block], grad_probs[Block];
      score<Dim, Block>(queries, first, s, j, g, j + kLanes == padded, last_bias, logits);
      for (int64_t b = 0; b < Block; ++b) grad_probs[b] = splat(0.f);
      column_products<Dim, Block>(grad_rows, s.value_columns.data(), padded, j, grad_probs);
      for (int64_t b = 0; b < Block; ++b) {
        const vec16 p = vexp(logits[b] - row_lse[b]);
        store(probs + b * padded + j, p);
        store(grads + b * padded + j, p * (grad_probs[b] - row_delta[b]));
      }
    }
    // dQ = scale * dS K
    vec16 acc[Block][Vecs];
    weighted_rows<Dim, Block>(grads, padded, s.key_rows.data(), length, acc);
    for (int64_t b = 0; b < count; ++b)
      for (int64_t u = 0; u < Vecs; ++u) {
        float* row = grad_q.data + (first + b) * grad_q.stride + u * kLanes;
        store(row, accumulate_qk ? load(row) + acc[b][u] * g.scale : acc[b][u] * g.scale);
      }
    // dK += dS^T (scale * Q), dV += P^T dO: one 16-channel slice at a time, its query and
    // output-gradient vectors held in registers across the keys.
    for (int64_t u = 0; u < Vecs; ++u) {
      vec16 query_slice[Block], grad_slice[Block];
      for (int64_t b = 0; b < Block; ++b) {
        query_slice[b] = load(&queries.rows[b][u * kLanes]);
        grad_slice[b] = load(&grad_rows[b][u * kLanes]);
      }
      for (int64_t t = 0; t < length; ++t) {
        float* key_slice = s.grad_key.data() + t * Dim + u * kLanes;
        float* value_slice = s.grad_value.data() + t * Dim + u * kLanes;
        vec16 grad_key = load(key_slice), grad_value = load(value_slice);
        for (int64_t b = 0; b < Block; ++b) {
          grad_key += query_slice[b] * grads[b * padded + t];
          grad_value += grad_slice[b] * probs[b * padded + t];
        }
        store(key_slice, grad_key);
        store(value_slice, grad_value);
      }
    }
  }
  for (int64_t t = 0; t < length; ++t) {
    float* key_row = grad_k.data + t * grad_k.stride;
    if (accumulate_qk) {
      for (int64_t c = 0; c < Dim; ++c) key_row[c] += s.grad_key[t * Dim + c];
    } else {
      std::memcpy(key_row, s.grad_key.data() + t * Dim, Dim * sizeof(float));
    }
    std::memcpy(grad_v.data + t * grad_v.stride, s.grad_value.data() + t * Dim,
                Dim * sizeof(float));
  }
}

// Operands are (B, S, L, heads, D) views: sequence (b, s) of B x S, L tokens, channels dense.
// The rows of one (sequence, head):
template <typename Pointer>
Pointer head_data(const torch::Tensor& t, int64_t index, int64_t sequences, int64_t heads) {
  const int64_t head = index % heads, sequence = index / heads;
  return static_cast<Pointer>(t.data_ptr<float>()) + (sequence / sequences) * t.stride(0) +
         (sequence % sequences) * t.stride(1) + head * t.stride(3);
}

Rows rows_of(const torch::Tensor& t, int64_t index, int64_t sequences, int64_t heads) {
  return Rows{head_data<const float*>(t, index, sequences, heads), t.stride(2)};
}

OutRows out_rows_of(torch::Tensor& t, int64_t index, int64_t sequences, int64_t heads) {
  return OutRows{head_data<float*>(t, index, sequences, heads), t.stride(2)};
}

void add_rows(RowPrefetch& ahead, const torch::Tensor& t, int64_t index, int64_t sequences,
              int64_t heads, bool write = false) {
  ahead.add(head_data<const float*>(t, index, sequences, heads), t.stride(2), write);
}

void check_operand(const torch::Tensor& t, const char* name, const torch::Tensor& like) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32,
              "decay_attention: ", name, " must be a float32 CPU tensor, got ", t.scalar_type(),
              " on ", t.device());
  TORCH_CHECK(t.sizes() == like.sizes(), "decay_attention: ", name, " must have the shape ",
              like.sizes(), ", got ", t.sizes());
  TORCH_CHECK(t.stride(4) == 1, "decay_attention: ", name, " needs dense channels (stride 1)");
}

template <typename Body>
void dispatch_head_dim(int64_t dim, Body body) {
  switch (dim) {
    case 16: body(std::integral_constant<int64_t, 16>{}); break;
    case 32: body(std::integral_constant<int64_t, 32>{}); break;
    case 64: body(std::integral_constant<int64_t, 64>{}); break;
    default: TORCH_CHECK(false, "decay_attention: head dim must be 16, 32 or 64, got ", dim);
  }
}

Geometry geometry(int64_t length, int64_t grid_width, const torch::Tensor& rates, int64_t head,
                  double scale) {
  return Geometry{length, (length + kLanes - 1) / kLanes * kLanes, grid_width,
                  rates.data_ptr<float>()[head], static_cast<float>(scale)};
}

void check_arguments(const torch::Tensor& q, const torch::Tensor& rates, int64_t grid_width) {
  TORCH_CHECK(q.dim() == 5, "decay_attention: q must be (B, S, L, heads, D), got ", q.sizes());
  TORCH_CHECK(rates.dim() == 1 && rates.size(0) == q.size(3) && rates.is_contiguous() &&
                  rates.scalar_type() == torch::kFloat32,
              "decay_attention: rates must be a dense float32 (heads,) tensor, got ",
              rates.sizes());
  TORCH_CHECK(grid_width >= 0 && (grid_width == 0 || q.size(2) % grid_width == 0),
              "decay_attention: grid_width ", grid_width, " must divide the tokens ", q.size(2));
}

void check_lse(const torch::Tensor& lse, const torch::Tensor& q) {
  TORCH_CHECK(lse.numel() == 0 || (lse.is_contiguous() && lse.scalar_type() == torch::kFloat32 &&
                                   lse.sizes() == torch::IntArrayRef({q.size(0), q.size(1),
                                                                      q.size(3), q.size(2)})),
              "decay_attention: lse must be empty or a dense float32 (B, S, heads, L) tensor, got ",
              lse.sizes());
}

// q and every named operand: float32 CPU tensors of q's (B, S, L, heads, D) shape; and the
// arguments every call shares.
void check_call(const torch::Tensor& q,
                std::initializer_list<std::pair<const char*, const torch::Tensor*>> operands,
                const torch::Tensor& rates, int64_t grid_width, const torch::Tensor& lse) {
  check_operand(q, "q", q);
  for (const auto& [name, tensor] : operands) check_operand(*tensor, name, q);
  check_arguments(q, rates, grid_width);
  check_lse(lse, q);
}

}  // namespace

// q, k, v, out: (B, S, L, heads, D) float32 views (B x S sequences of L tokens), channels dense;
// rates: (heads,) log(gamma). Writes the attention output into `out`, and the log-sum-exp of
// each query into `lse`, (B, S, heads, L), unless it is empty.
void decay_attention_forward(const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v, torch::Tensor out, torch::Tensor lse,
                             const torch::Tensor& rates, double scale, int64_t grid_width) {
  check_call(q, {{"k", &k}, {"v", &v}, {"out", &out}}, rates, grid_width, lse);
  const int64_t sequences = q.size(1), length = q.size(2), heads = q.size(3), dim = q.size(4);
  const int64_t pairs = q.size(0) * sequences * heads;
  if (q.numel() == 0) return;
  const bool with_lse = lse.numel() > 0;
  dispatch_head_dim(dim, [&](auto dim_constant) {
    constexpr int64_t Dim = decltype(dim_constant)::value;
    at::parallel_for(0, pairs, 1, [&](int64_t begin, int64_t end) {
      Scratch scratch(geometry(length, grid_width, rates, 0, scale), Dim, query_block<Dim>(),
                      false);
      for (int64_t index = begin; index < end; ++index) {
        RowPrefetch ahead(length, Dim);
        if (index + 1 < end) {
          for (const torch::Tensor* t : {&q, &k, &v}) add_rows(ahead, *t, index + 1, sequences, heads);
          add_rows(ahead, out, index + 1, sequences, heads, true);
        }
        float* lse_rows = with_lse ? lse.data_ptr<float>() + index * length : nullptr;
        forward_head<Dim>(rows_of(q, index, sequences, heads), rows_of(k, index, sequences, heads),
                          rows_of(v, index, sequences, heads),
                          out_rows_of(out, index, sequences, heads), lse_rows,
                          geometry(length, grid_width, rates, index % heads, scale), scratch,
                          ahead);
      }
    });
  });
}

// Gradients of decay_attention_forward into grad_q, grad_k, grad_v; every tensor but lse is a
// (B, S, L, heads, D) view as in the forward pass. With `accumulate_qk` the gradients of q and k
// are added to what grad_q and grad_k hold (the second pass of the decomposed form).
void decay_attention_backward(const torch::Tensor& grad_out, const torch::Tensor& q,
                              const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& out, const torch::Tensor& lse,
                              torch::Tensor grad_q, torch::Tensor grad_k, torch::Tensor grad_v,
                              const torch::Tensor& rates, double scale, int64_t grid_width,
                              bool accumulate_qk) {
  check_call(q,
             {{"k", &k}, {"v", &v}, {"out", &out}, {"grad_out", &grad_out}, {"grad_q", &grad_q},
              {"grad_k", &grad_k}, {"grad_v", &grad_v}},
             rates, grid_width, lse);
  TORCH_CHECK(lse.numel() > 0 || q.numel() == 0, "decay_attention: the backward needs the lse");
  const int64_t sequences = q.size(1), length = q.size(2), heads = q.size(3), dim = q.size(4);
  const int64_t pairs = q.size(0) * sequences * heads;
  if (q.numel() == 0) return;
  dispatch_head_dim(dim, [&](auto dim_constant) {
    constexpr int64_t Dim = decltype(dim_constant)::value;
    at::parallel_for(0, pairs, 1, [&](int64_t begin, int64_t end) {
      Scratch scratch(geometry(length, grid_width, rates, 0, scale), Dim, query_block<Dim>(),
                      true);
      for (int64_t index = begin; index < end; ++index) {
        RowPrefetch ahead(length, Dim);
        if (index + 1 < end) {
          for (const torch::Tensor* t : {&q, &k, &v, &out, &grad_out})
            add_rows(ahead, *t, index + 1, sequences, heads);
          for (const torch::Tensor* t : {&grad_q, &grad_k, &grad_v})
            add_rows(ahead, *t, index + 1, sequences, heads, true);
        }
        backward_head<Dim>(
            rows_of(q, index, sequences, heads), rows_of(k, index, sequences, heads),
            rows_of(v, index, sequences, heads), rows_of(out, index, sequences, heads),
            rows_of(grad_out, index, sequences, heads), lse.data_ptr<float>() + index * length,
            out_rows_of(grad_q, index, sequences, heads),
            out_rows_of(grad_k, index, sequences, heads),
            out_rows_of(grad_v, index, sequences, heads), accumulate_qk,
            geometry(length, grid_width, rates, index % heads, scale), scratch, ahead);
      }
    });
  });
}
