// Weight gradient of a stride-1, "same"-padded depthwise convolution over channels-last maps.
//
// oneDNN computes this gradient for channels-last 5x5 kernels 10-20x slower than its forward pass
// (docs/benchmarks.md), and RMT runs three depthwise convs per block (CPE, LePE, the FFN's).
// Here each output pixel's gradient vector is multiplied into the k x k input vectors around it
// and summed per output row: for RMT's 3x3 and 5x5 kernels the k x k sums of a 64-byte chunk of
// channels stay in registers across the row (each gradient vector loaded once), other kernels
// sum into a (k, k, C) accumulator in the L1 cache.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define MMRMT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MMRMT_CLONES
#endif
#define MMRMT_INLINE inline __attribute__((always_inline))

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

// Kernel sizes 3 and 5 (RMT's), channels in whole chunks: adds each output row's gradient
// sums to `acc` ((K * K + 1) * channels: the taps, then the bias) for the channels
// [0, chunks * Chunk::kSize). Returns the channels it covered.
template <typename scalar_t, int K>
MMRMT_INLINE int64_t accumulate_rows_registers(const scalar_t* grad, const scalar_t* input,
                                               scalar_t* acc, int64_t row_begin,
                                               int64_t row_end, int64_t height, int64_t width,
                                               int64_t channels) {
  using Vec = typename Chunk<scalar_t>::Vec;
  constexpr int64_t lanes = Chunk<scalar_t>::kSize, pad = K / 2;
  const int64_t covered = channels / lanes * lanes;
  const int64_t row_stride = width * channels;
  const int64_t interior_begin = std::min(pad, width), interior_end = std::max(width - pad, interior_begin);
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
      const scalar_t* grad_row = grad + row * row_stride + c;
      Vec sums[K][K], bias = Vec{};
      for (int i = 0; i < K; ++i)
        for (int j = 0; j < K; ++j) sums[i][j] = Vec{};
      accumulate_columns<scalar_t, K, true>(grad_row, rows, 0, interior_begin, width, channels,
                                            sums, bias);
      accumulate_columns<scalar_t, K, false>(grad_row, rows, interior_begin, interior_end, width,
                                             channels, sums, bias);
      accumulate_columns<scalar_t, K, true>(grad_row, rows, interior_end, width, width, channels,
                                            sums, bias);
      // Two-level sums (per row, then per chunk of rows) keep the rounding error of long maps
      // small.
      for (int i = 0; i < K; ++i)
        for (int j = 0; j < K; ++j)
          for (int64_t l = 0; l < lanes; ++l) acc[(i * K + j) * channels + c + l] += sums[i][j][l];
      for (int64_t l = 0; l < lanes; ++l) acc[K * K * channels + c + l] += bias[l];
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
  // One accumulator per chunk of rows, summed at the end: the result does not depend on how
  // at::parallel_for schedules the chunks, only on the thread count.
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
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
  const auto total = partial.sum(0);
  // (k, k, C) -> (C, 1, k, k)
  auto weight_grad = total.narrow(0, 0, kernel * kernel * channels)
                         .view({kernel, kernel, channels})
                         .permute({2, 0, 1})
                         .unsqueeze(1)
                         .contiguous();
  return {weight_grad, total.narrow(0, kernel * kernel * channels, channels).clone()};
}
