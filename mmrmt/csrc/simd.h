// Vectors of 16 floats (GCC vector types, which each target_clones clone lowers to AVX-512, AVX2
// or SSE) and the element-wise functions the CPU kernels of mmrmt/csrc share.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#define MMRMT_INLINE inline __attribute__((always_inline))
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define MMRMT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MMRMT_CLONES
#endif

namespace mmrmt {
namespace simd {

typedef float vec16 __attribute__((vector_size(64)));
typedef int32_t ivec16 __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;

MMRMT_INLINE vec16 load(const float* p) {
  vec16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

MMRMT_INLINE void store(float* p, vec16 v) { std::memcpy(p, &v, sizeof(v)); }

MMRMT_INLINE vec16 splat(float x) { return vec16{} + x; }

MMRMT_INLINE vec16 vabs(vec16 x) {
  ivec16 bits;
  std::memcpy(&bits, &x, sizeof(bits));
  bits &= 0x7fffffff;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

MMRMT_INLINE vec16 vmax(vec16 a, vec16 b) { return a > b ? a : b; }

MMRMT_INLINE float hmax(vec16 v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = std::max(m, v[i]);
  return m;
}

MMRMT_INLINE float hsum(vec16 v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

// exp(x) for x <= 0 (Cephes' expf: range reduction by ln 2, a degree-5 polynomial; relative
// error about 1e-7). Below -87.3 (and at -inf, the attention's padding keys) it returns
// exp(-87.3), 1e-38: nothing beside a softmax row's maximum term, exp(0) = 1, and the padding
// keys' values are zero; GELU's exp(-x^2) terms there are multiplied to nothing.
MMRMT_INLINE vec16 vexp(vec16 x) {
  const vec16 clamped = x < -87.3f ? splat(-87.3f) : x;
  // Round to nearest through the float's mantissa: 1.5 * 2^23 pushes the fraction out.
  vec16 n = clamped * 1.44269504088896341f + 12582912.0f;
  n = n - 12582912.0f;
  vec16 r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vec16 y = splat(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  const ivec16 bits = (__builtin_convertvector(n, ivec16) + 127) << 23;
  vec16 scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

// erf(x) (Abramowitz and Stegun 7.1.26, absolute error 1.5e-7: the formula of PyTorch's
// vectorised erf, which its exact GELU uses on the CPU).
MMRMT_INLINE vec16 verf(vec16 x) {
  const vec16 a = vabs(x);
  const vec16 t = 1.0f / (a * 0.3275911f + 1.0f);
  vec16 r = t * 1.061405429f - 1.453152027f;
  r = r * t + 1.421413741f;
  r = r * t - 0.284496736f;
  r = r * t + 0.254829592f;
  const vec16 magnitude = 1.0f - r * t * vexp(-(x * x));
  return x < 0.0f ? -magnitude : magnitude;
}

constexpr float kSqrtHalf = 0.70710678118654752440f;        // 1 / sqrt(2)
constexpr float kInvSqrtTwoPi = 0.39894228040143267794f;    // 1 / sqrt(2 pi)

// The exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
MMRMT_INLINE vec16 vgelu(vec16 x) { return 0.5f * x * (1.0f + verf(x * kSqrtHalf)); }

// Its derivative, Phi(x) + x phi(x).
MMRMT_INLINE vec16 vgelu_grad(vec16 x) {
  return 0.5f * (1.0f + verf(x * kSqrtHalf)) + x * kInvSqrtTwoPi * vexp(-0.5f * x * x);
}

}  // namespace simd
}  // namespace mmrmt
