// Weight gradient of a stride-1, "same"-padded depthwise convolution over channels-last maps.
//
// oneDNN computes this gradient for channels-last 5x5 kernels 10-20x slower than its forward pass
// (docs/benchmarks.md), and RMT runs three depthwise convs per block (CPE, LePE, the FFN's).
// Here each output pixel's gradient vector is multiplied into the k x k input vectors around it
// and summed per output row: for RMT's 3x3 and 5x5 kernels the k x k sums of a 64-byte chunk of
// channels stay in registers across the row (each gradient vector loaded once), other kernels
// sum into a (k, k, C) accumulator in the L1 cache.
#include <torch/extension.h>

#include "simd.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

// One 64-byte chunk of channels: 16 floats or 8 doubles.
template <typename scalar_t>
struct Chunk {
  typedef scalar_t Vec __attribute__((vector_size(64)));
  static constexpr int64_t kSize = 64 / sizeof(scalar_t);

  static MMRMT_INLINE Vec load(const scalar_t* p) {
    Vec v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
};

// The K x K weight gradient and the bias gradient of one output row over one chunk of
// channels, held in registers across the row: each pixel's gradient vector is loaded once and
// multiplied into the K x K input vectors around it. `rows[i]` is input row y + i - K / 2 at
// the chunk, or null outside the map. Columns [x_begin, x_end); with `Clip`, the taps outside
// the row are skipped (the border columns). The sums run over x in increasing order, per tap.
template <typename scalar_t, int K, bool Clip>
MMRMT_INLINE void accumulate_columns(const scalar_t* grad_row, const scalar_t* const (&rows)[K],
                                     int64_t x_begin, int64_t x_end, int64_t width,
                                     int64_t channels,
                                     typename Chunk<scalar_t>::Vec (&acc)[K][K],
                                     typename Chunk<scalar_t>::Vec& bias) {
  constexpr int64_t pad = K / 2;
  for (int64_t x = x_begin; x < x_end; ++x) {
    const auto g = Chunk<scalar_t>::load(grad_row + x * channels);
    bias += g;
    for (int i = 0; i < K; ++i) {
      if (!rows[i]) continue;
      for (int j = 0; j < K; ++j) {
        const int64_t source_x = x + j - pad;
        if (Clip && (source_x < 0 || source_x >= width)) continue;
        acc[i][j] += g * Chunk<scalar_t>::load(rows[i] + source_x * channels);
      }
    }
  }
}

// Columns [begin, end) of a row whose K-wide window lies inside the row: the columns before and
// after need their taps clipped.
struct InteriorColumns {
  int64_t begin, end;

  InteriorColumns(int64_t width, int64_t pad)
      : begin(std::min(pad, width)), end(std::max(width - pad, begin)) {}
};

// One output row's weight and bias gradients over one chunk of channels (see
// accumulate_columns), summed in registers and then added to acc[(i * K + j) * channels] and
// acc[K * K * channels], both at the chunk.
template <typename scalar_t, int K>
MMRMT_INLINE void add_row_sums(const scalar_t* grad_row, const scalar_t* const (&rows)[K],
                               int64_t width, int64_t channels, scalar_t* acc) {
  using Vec = typename Chunk<scalar_t>::Vec;
  const InteriorColumns interior(width, K / 2);
  Vec sums[K][K], bias = Vec{};
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) sums[i][j] = Vec{};
  accumulate_columns<scalar_t, K, true>(grad_row, rows, 0, interior.begin, width, channels, sums,
                                        bias);
  accumulate_columns<scalar_t, K, false>(grad_row, rows, interior.begin, interior.end, width,
                                         channels, sums, bias);
  accumulate_columns<scalar_t, K, true>(grad_row, rows, interior.end, width, width, channels,
                                        sums, bias);
  // Two-level sums (per row, then per chunk of rows) keep the rounding error of long maps small.
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j)
      for (int64_t l = 0; l < Chunk<scalar_t>::kSize; ++l)
        acc[(i * K + j) * channels + l] += sums[i][j][l];
  for (int64_t l = 0; l < Chunk<scalar_t>::kSize; ++l) acc[K * K * channels + l] += bias[l];
}

// Kernel sizes 3 and 5 (RMT's), channels in whole chunks: adds each output row's gradient
// sums to `acc` ((K * K + 1) * channels: the taps, then the bias) for the channels
// [0, chunks * Chunk::kSize). Returns the channels it covered.
template <typename scalar_t, int K>
MMRMT_INLINE int64_t accumulate_rows_registers(const scalar_t* grad, const scalar_t* input,
                                               scalar_t* acc, int64_t row_begin,
                                               int64_t row_end, int64_t height, int64_t width,
                                               int64_t channels) {
  constexpr int64_t lanes = Chunk<scalar_t>::kSize, pad = K / 2;
  const int64_t covered = channels / lanes * lanes;
  const int64_t row_stride = width * channels;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t image = row / height, y = row % height;
    for (int64_t c = 0; c < covered; c += lanes) {
      const scalar_t* rows[K];
      for (int i = 0; i < K; ++i) {
        const int64_t source_y = y + i - pad;
        rows[i] = source_y < 0 || source_y >= height
                      ? nullptr
                      : input + (image * height + source_y) * row_stride + c;
      }
      add_row_sums<scalar_t, K>(grad + row * row_stride + c, rows, width, channels, acc + c);
    }
  }
  return covered;
}

// Accumulate sum_{y, x} grad[n, y, x, :] * input[n, y + i - pad, x + j - pad, :] into
// acc[i, j, :] for the output rows [row_begin, row_end) of the flattened (N * H) rows, and the
// bias gradient, sum_{y, x} grad[n, y, x, :], into acc[k * k, :]. Kernels of 3 and 5 take the
// whole 64-byte chunks of channels in registers (above); other kernels, and the channels past the
// last whole chunk, run the loops below over the channels, which the compiler vectorises.
template <typename scalar_t>
MMRMT_CLONES void accumulate_rows(const scalar_t* grad, const scalar_t* input, scalar_t* acc,
                                  int64_t row_begin, int64_t row_end, int64_t height,
                                  int64_t width, int64_t channels, int64_t kernel, int64_t pad) {
  int64_t first = 0;  // channels [0, first) done in registers
  if (kernel == 3)
    first = accumulate_rows_registers<scalar_t, 3>(grad, input, acc, row_begin, row_end, height,
                                                   width, channels);
  else if (kernel == 5)
    first = accumulate_rows_registers<scalar_t, 5>(grad, input, acc, row_begin, row_end, height,
                                                   width, channels);
  if (first == channels) return;
  const int64_t row_stride = width * channels;
  const int64_t acc_size = (kernel * kernel + 1) * channels;
  std::vector<scalar_t> row_acc(acc_size);
  scalar_t* bias_acc = row_acc.data() + kernel * kernel * channels;
  for (int64_t row = row_begin; row < row_end; ++row) {
    std::fill(row_acc.begin(), row_acc.end(), scalar_t(0));
    const int64_t image = row / height;
    const int64_t y = row % height;
    const scalar_t* grad_row = grad + row * row_stride;
    for (int64_t x = 0; x < width; ++x) {
      const scalar_t* g = grad_row + x * channels;
#pragma GCC ivdep
      for (int64_t c = first; c < channels; ++c) bias_acc[c] += g[c];
    }
    for (int64_t i = 0; i < kernel; ++i) {
      const int64_t source_y = y + i - pad;
      if (source_y < 0 || source_y >= height) continue;
      const scalar_t* input_row = input + (image * height + source_y) * row_stride;
      scalar_t* acc_row = row_acc.data() + i * kernel * channels;
      for (int64_t x = 0; x < width; ++x) {
        const scalar_t* g = grad_row + x * channels;
        const int64_t j_begin = std::max<int64_t>(0, pad - x);
        const int64_t j_end = std::min<int64_t>(kernel, width + pad - x);
        for (int64_t j = j_begin; j < j_end; ++j) {
          const scalar_t* in = input_row + (x + j - pad) * channels;
          scalar_t* a = acc_row + j * channels;
#pragma GCC ivdep
          for (int64_t c = first; c < channels; ++c) a[c] += g[c] * in[c];
        }
      }
    }
    for (int64_t e = 0; e < kernel * kernel + 1; ++e)
      for (int64_t c = first; c < channels; ++c) acc[e * channels + c] += row_acc[e * channels + c];
  }
}


// -- GELU then a 3x3 depthwise conv, fused (the FFN's hidden map in training) -------------------
//
//   out = conv3x3(GELU(h), weight) + bias
//
// The FFN of each RMT block runs fc1, GELU and a 3x3 depthwise conv over a map of 3-4x the
// block's channels. Computed op by op, GELU's output is one more map written, kept for the
// backward pass (the conv's weight gradient reads it) and read back, and its gradient another;
// the largest of them, 32 MiB in stage 1 of a 2 x 512 x 512 batch, are fresh memory maps, page
// faults on every touch. Here the GELU of each input row is computed once into a ring of three
// rows in the cache and never stored, and the backward pass recomputes it from h.

using namespace mmrmt::simd;

// The GELU of the rows of the map that one thread's output rows read, three at a time.
class GeluRows {
 public:
  GeluRows(const float* input, int64_t height, int64_t width, int64_t channels)
      : input_(input), height_(height), row_size_(width * channels),
        rows_(3 * width * channels) {}

  // GELU of row y of image n, or null outside the map.
  const float* row(int64_t image, int64_t y) {
    if (y < 0 || y >= height_) return nullptr;
    const int64_t flat = image * height_ + y, slot = flat % 3;
    float* cached = rows_.data() + slot * row_size_;
    if (held_[slot] != flat) {
      const float* source = input_ + flat * row_size_;
      for (int64_t e = 0; e < row_size_; e += kLanes) store(cached + e, vgelu(load(source + e)));
      held_[slot] = flat;
    }
    return cached;
  }

 private:
  const float* input_;
  int64_t height_, row_size_;
  std::vector<float> rows_;
  int64_t held_[3] = {-1, -1, -1};
};

// (C, 1, 3, 3) -> (9, C): a tap's weights over a chunk of channels in one vector.
std::vector<float> taps_by_channel(const torch::Tensor& weight) {
  const auto w = weight.contiguous();
  const int64_t channels = w.size(0);
  const float* data = w.data_ptr<float>();
  std::vector<float> taps(9 * channels);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t t = 0; t < 9; ++t) taps[t * channels + c] = data[c * 9 + t];
  return taps;
}

// Sum over the 3x3 taps of weight(tap) * rows[i][x + j - 1] for columns [x_begin, x_end) of one
// chunk of channels, plus `first`, into out[x]. With `Clip` the taps outside the row are skipped.
template <bool Clip>
MMRMT_INLINE void conv_columns(const float* const (&rows)[3], const vec16 (&taps)[9], vec16 first,
                               int64_t x_begin, int64_t x_end, int64_t width, int64_t channels,
                               float* out) {
  for (int64_t x = x_begin; x < x_end; ++x) {
    vec16 acc = first;
    for (int i = 0; i < 3; ++i) {
      if (!rows[i]) continue;
      for (int j = 0; j < 3; ++j) {
        const int64_t source_x = x + j - 1;
        if (Clip && (source_x < 0 || source_x >= width)) continue;
        acc += taps[i * 3 + j] * load(rows[i] + source_x * channels);
      }
    }
    store(out + x * channels, acc);
  }
}

// One output row of a 3x3 "same" conv over a chunk of channels: rows[i] is input row y + i - 1
// at the chunk (null outside the map), `taps_at` the (9, C) taps at the chunk.
MMRMT_INLINE void conv_row(const float* const (&rows)[3], const float* taps_at, vec16 first,
                           int64_t width, int64_t channels, float* out) {
  vec16 taps[9];
  for (int t = 0; t < 9; ++t) taps[t] = load(taps_at + t * channels);
  const InteriorColumns interior(width, 1);
  conv_columns<true>(rows, taps, first, 0, interior.begin, width, channels, out);
  conv_columns<false>(rows, taps, first, interior.begin, interior.end, width, channels, out);
  conv_columns<true>(rows, taps, first, interior.end, width, width, channels, out);
}

MMRMT_CLONES void gelu_conv_rows(const float* input, const float* taps, const float* bias,
                                 float* out, int64_t row_begin, int64_t row_end, int64_t height,
                                 int64_t width, int64_t channels) {
  GeluRows gelu(input, height, width, channels);
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t image = row / height, y = row % height;
    const float* rows[3] = {gelu.row(image, y - 1), gelu.row(image, y), gelu.row(image, y + 1)};
    for (int64_t c = 0; c < channels; c += kLanes) {
      const float* at[3];
      for (int i = 0; i < 3; ++i) at[i] = rows[i] ? rows[i] + c : nullptr;
      conv_row(at, taps + c, bias ? load(bias + c) : splat(0.f), width, channels,
               out + row * width * channels + c);
    }
  }
}

// The backward pass over output rows [row_begin, row_end): the input gradient
// GELU'(h) * conv3x3(grad, flipped weight) of those rows into grad_input, and the weight and
// bias gradients (of the conv of GELU(h)) added to acc (9 taps, then the bias, by channel).
MMRMT_CLONES void gelu_conv_backward_rows(const float* grad, const float* input,
                                          const float* flipped_taps, float* grad_input,
                                          float* acc, int64_t row_begin, int64_t row_end,
                                          int64_t height, int64_t width, int64_t channels) {
  GeluRows gelu(input, height, width, channels);
  const int64_t row_size = width * channels;
  std::vector<float> conv_out(row_size);
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t image = row / height, y = row % height;
    const float* gelu_rows[3] = {gelu.row(image, y - 1), gelu.row(image, y),
                                 gelu.row(image, y + 1)};
    const float* grad_rows[3];
    for (int i = 0; i < 3; ++i) {
      const int64_t source_y = y + i - 1;
      grad_rows[i] = source_y < 0 || source_y >= height ? nullptr
                                                         : grad + (row + i - 1) * row_size;
    }
    const float* grad_row = grad + row * row_size;
    for (int64_t c = 0; c < channels; c += kLanes) {
      // Weight and bias gradients, from the GELU rows.
      const float* at[3];
      for (int i = 0; i < 3; ++i) at[i] = gelu_rows[i] ? gelu_rows[i] + c : nullptr;
      add_row_sums<float, 3>(grad_row + c, at, width, channels, acc + c);
      // Input gradient: the conv of the output gradient with the flipped kernel.
      const float* grad_at[3];
      for (int i = 0; i < 3; ++i) grad_at[i] = grad_rows[i] ? grad_rows[i] + c : nullptr;
      conv_row(grad_at, flipped_taps + c, splat(0.f), width, channels, conv_out.data() + c);
    }
    const float* h = input + row * row_size;
    float* out = grad_input + row * row_size;
    for (int64_t e = 0; e < row_size; e += kLanes)
      store(out + e, load(conv_out.data() + e) * vgelu_grad(load(h + e)));
  }
}

// Chunks of the rows with one accumulator each, summed at the end: the result does not depend on
// how at::parallel_for schedules the chunks, only on the thread count.
int64_t row_chunks(int64_t rows) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
}

// The chunks' (k * k + 1) * C sums -> [weight gradient (C, 1, k, k), bias gradient (C,)].
std::vector<torch::Tensor> weight_and_bias_grads(const torch::Tensor& partial, int64_t kernel,
                                                 int64_t channels) {
  const auto total = partial.sum(0);
  // (k, k, C) -> (C, 1, k, k)
  auto weight_grad = total.narrow(0, 0, kernel * kernel * channels)
                         .view({kernel, kernel, channels})
                         .permute({2, 0, 1})
                         .unsqueeze(1)
                         .contiguous();
  return {weight_grad, total.narrow(0, kernel * kernel * channels, channels).clone()};
}

void check_gelu_conv(const torch::Tensor& input, const torch::Tensor& weight) {
  TORCH_CHECK(input.device().is_cpu() && input.scalar_type() == torch::kFloat32 &&
                  input.dim() == 4 && input.is_contiguous(),
              "gelu_depthwise_conv: input must be a contiguous float32 CPU (N, H, W, C) map, got ",
              input.sizes());
  TORCH_CHECK(input.size(3) % kLanes == 0, "gelu_depthwise_conv: channels must be a multiple of ",
              kLanes, ", got ", input.size(3));
  TORCH_CHECK(weight.scalar_type() == torch::kFloat32 &&
                  weight.sizes() == torch::IntArrayRef({input.size(3), 1, 3, 3}),
              "gelu_depthwise_conv: weight must be float32 (C, 1, 3, 3) with C = ", input.size(3),
              ", got ", weight.sizes());
}

}  // namespace

// grad_output, input: (N, H, W, C) contiguous, same dtype (float32 or float64).
// Returns the (C, 1, kernel, kernel) weight gradient and the (C,) bias gradient of a depthwise
// conv with stride 1 and padding kernel / 2.
std::vector<torch::Tensor> depthwise_weight_grad(const torch::Tensor& grad_output, const torch::Tensor& input,
                                    int64_t kernel) {
  TORCH_CHECK(grad_output.device().is_cpu() && input.device().is_cpu(),
              "depthwise_weight_grad: CPU tensors only");
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.sizes() == input.sizes(),
              "depthwise_weight_grad: grad_output and input must be (N, H, W, C) of one shape, got ",
              grad_output.sizes(), " and ", input.sizes());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(),
              "depthwise_weight_grad: grad_output and input must share a dtype");
  TORCH_CHECK(kernel > 0 && kernel % 2 == 1, "depthwise_weight_grad: odd kernel size, got ",
              kernel);
  const auto grad = grad_output.contiguous();
  const auto in = input.contiguous();
  const int64_t batch = in.size(0), height = in.size(1), width = in.size(2),
                channels = in.size(3);
  const int64_t rows = batch * height;
  const int64_t pad = kernel / 2;
  const int64_t acc_size = (kernel * kernel + 1) * channels;
  const int64_t chunks = row_chunks(rows);
  auto partial = torch::zeros({chunks, acc_size}, in.options());
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "depthwise_weight_grad", [&] {
    const scalar_t* grad_data = grad.data_ptr<scalar_t>();
    const scalar_t* input_data = in.data_ptr<scalar_t>();
    scalar_t* partial_data = partial.data_ptr<scalar_t>();
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        const int64_t row_begin = rows * chunk / chunks;
        const int64_t row_end = rows * (chunk + 1) / chunks;
        accumulate_rows<scalar_t>(grad_data, input_data, partial_data + chunk * acc_size,
                                  row_begin, row_end, height, width, channels, kernel, pad);
      }
    });
  });
  return weight_and_bias_grads(partial, kernel, channels);
}

// conv2d(GELU(input), weight, bias, padding=1, groups=C) over (N, H, W, C) float32 maps.
torch::Tensor gelu_depthwise_forward(const torch::Tensor& input, const torch::Tensor& weight,
                                     const c10::optional<torch::Tensor>& bias) {
  check_gelu_conv(input, weight);
  const int64_t height = input.size(1), width = input.size(2), channels = input.size(3);
  const int64_t rows = input.size(0) * height;
  TORCH_CHECK(!bias || (bias->is_contiguous() && bias->scalar_type() == torch::kFloat32 &&
                        bias->numel() == channels),
              "gelu_depthwise_conv: bias must be a dense float32 (C,) tensor");
  auto out = torch::empty_like(input);
  const auto taps = taps_by_channel(weight);
  const float* bias_data = bias ? bias->data_ptr<float>() : nullptr;
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    gelu_conv_rows(input.data_ptr<float>(), taps.data(), bias_data, out.data_ptr<float>(), begin,
                   end, height, width, channels);
  });
  return out;
}

// Gradients of gelu_depthwise_forward: [input, weight (C, 1, 3, 3), bias (C,)].
std::vector<torch::Tensor> gelu_depthwise_backward(const torch::Tensor& grad_output,
                                                   const torch::Tensor& input,
                                                   const torch::Tensor& weight) {
  check_gelu_conv(input, weight);
  TORCH_CHECK(grad_output.sizes() == input.sizes(),
              "gelu_depthwise_conv: grad_output must have the input's shape ", input.sizes(),
              ", got ", grad_output.sizes());
  const auto grad = grad_output.contiguous();
  const int64_t height = input.size(1), width = input.size(2), channels = input.size(3);
  const int64_t rows = input.size(0) * height;
  auto grad_input = torch::empty_like(input);
  const auto flipped_taps = taps_by_channel(weight.flip({2, 3}));
  const int64_t chunks = row_chunks(rows);
  auto partial = torch::zeros({chunks, 10 * channels}, input.options());
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk)
      gelu_conv_backward_rows(grad.data_ptr<float>(), input.data_ptr<float>(),
                              flipped_taps.data(), grad_input.data_ptr<float>(),
                              partial.data_ptr<float>() + chunk * 10 * channels,
                              rows * chunk / chunks, rows * (chunk + 1) / chunks, height, width,
                              channels);
  });
  auto grads = weight_and_bias_grads(partial, 3, channels);
  return {grad_input, grads[0], grads[1]};
}
