// Weight gradient of a stride-1, "same"-padded depthwise convolution over channels-last maps.
//
// oneDNN computes this gradient for channels-last 5x5 kernels 10-20x slower than its forward pass
// (docs/benchmarks.md), and RMT runs three depthwise convs per block (CPE, LePE, the FFN's).
// Here each output pixel's gradient vector is multiplied into the k x k input vectors around it
// and summed into a (k, k, C) accumulator that stays in the L1 cache; the loops run over the
// contiguous channels, which the compiler vectorises.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

// Accumulate sum_{y, x} grad[n, y, x, :] * input[n, y + i - pad, x + j - pad, :] into
// acc[i, j, :] for the output rows [row_begin, row_end) of the flattened (N * H) rows, and the
// bias gradient, sum_{y, x} grad[n, y, x, :], into acc[k * k, :] (the rows are in the cache).
template <typename scalar_t>
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void accumulate_rows(const scalar_t* grad, const scalar_t* input, scalar_t* acc,
                     int64_t row_begin, int64_t row_end, int64_t height, int64_t width,
                     int64_t channels, int64_t kernel, int64_t pad) {
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
      for (int64_t c = 0; c < channels; ++c) bias_acc[c] += g[c];
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
          for (int64_t c = 0; c < channels; ++c) a[c] += g[c] * in[c];
        }
      }
    }
    // Two-level sums (per row, then per chunk) keep the rounding error of long maps small.
    for (int64_t e = 0; e < acc_size; ++e) acc[e] += row_acc[e];
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
