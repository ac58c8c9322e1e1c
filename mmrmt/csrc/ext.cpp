// Python bindings of mmrmt._ext, the CPU kernels of mmrmt/csrc.
#include <torch/extension.h>

#include <vector>

std::vector<torch::Tensor> depthwise_weight_grad(const torch::Tensor& grad_output,
                                                 const torch::Tensor& input, int64_t kernel);

torch::Tensor gelu_depthwise_forward(const torch::Tensor& input, const torch::Tensor& weight,
                                     const c10::optional<torch::Tensor>& bias);

std::vector<torch::Tensor> gelu_depthwise_backward(const torch::Tensor& grad_output,
                                                   const torch::Tensor& input,
                                                   const torch::Tensor& weight);

void decay_attention_forward(const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v, torch::Tensor out, torch::Tensor lse,
                             const torch::Tensor& rates, double scale, int64_t grid_width);

void decay_attention_backward(const torch::Tensor& grad_out, const torch::Tensor& q,
                              const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& out, const torch::Tensor& lse,
                              torch::Tensor grad_q, torch::Tensor grad_k, torch::Tensor grad_v,
                              const torch::Tensor& rates, double scale, int64_t grid_width,
                              bool accumulate_qk);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("depthwise_weight_grad", &depthwise_weight_grad,
        "Weight and bias gradients of a stride-1 same-padded depthwise conv over (N, H, W, C) maps");
  m.def("gelu_depthwise_forward", &gelu_depthwise_forward,
        "3x3 same-padded depthwise conv of GELU(input) over (N, H, W, C) float32 maps");
  m.def("gelu_depthwise_backward", &gelu_depthwise_backward,
        "Gradients of gelu_depthwise_forward: input, weight, bias");
  m.def("decay_attention_forward", &decay_attention_forward,
        "Attention with a Manhattan decay made in the kernel, into out (and lse)");
  m.def("decay_attention_backward", &decay_attention_backward,
        "Gradients of decay_attention_forward into grad_q, grad_k, grad_v");
}
