// The CIFAR-10 network's local response normalization as two fused CPU
// kernels, forward and gradient, for float32 and bfloat16 tensors.
//
// The same function as tf.nn.lrn. TensorFlow computes it as a chain of
// element-wise passes over the whole tensor (or, for its gradient, a scalar
// loop); here a few pixels at a time are read, normalized in float32 in the
// cache, and written once. The gradient recomputes the pixel's norm from
// x instead of keeping it from the forward pass, so that nothing but x and y
// stays in memory between the two. bfloat16 tensors are widened to float32
// on load and rounded to the nearest even bfloat16 on store, as a cast
// would. Built by cifar10/kernels/build.py and used where it measured faster
// than TensorFlow's ops; tests/test_kernels.py checks it against tf.nn.lrn
// and its gradient.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;

#define LRN_ATTRS                   \
  Attr("T: {float, bfloat16}")      \
      .Attr("depth_radius: int >= 0") \
      .Attr("bias: float")          \
      .Attr("alpha: float")         \
      .Attr("beta: float")

REGISTER_OP("TutorialLrn")
    .Input("x: T")
    .Output("y: T")
    .LRN_ATTRS
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      tensorflow::shape_inference::ShapeHandle shape;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &shape));
      c->set_output(0, shape);
      return tensorflow::OkStatus();
    })
    .Doc("tf.nn.lrn's function, one pass over each pixel's channels.");

REGISTER_OP("TutorialLrnGrad")
    .Input("grads: T")
    .Input("x: T")
    .Output("dx: T")
    .LRN_ATTRS
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      tensorflow::shape_inference::ShapeHandle shape;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &shape));
      TF_RETURN_IF_ERROR(c->Merge(shape, c->input(0), &shape));
      c->set_output(0, shape);
      return tensorflow::OkStatus();
    })
    .Doc("The gradient of TutorialLrn with respect to x.");

// Loads and stores in float32 whatever T is.
inline float Load(float v) { return v; }
inline float Load(tensorflow::bfloat16 v) {
  uint16_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof(f));
  return f;
}
inline void Store(float f, float* out) { *out = f; }
inline void Store(float f, tensorflow::bfloat16* out) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  // Round to nearest, ties to even; a NaN stays a (quiet) NaN.
  uint16_t rounded = std::isnan(f)
      ? static_cast<uint16_t>((bits >> 16) | 0x40)
      : static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
  std::memcpy(out, &rounded, sizeof(rounded));
}

struct Params {
  int radius;
  float bias, alpha, beta;
};

// The per-pixel arithmetic. Always inlined, so that where depth and radius
// are the network's constants (ForPixels below) the compiler knows every
// trip count and keeps a pixel's channels in vector registers.
//
// padded: depth + 2 * radius floats whose radius first and last stay zero;
// sum: depth floats.
__attribute__((always_inline)) inline void WindowSum(
    int depth, int radius, const float* __restrict__ padded,
    float* __restrict__ sum) {
  for (int c = 0; c < depth; ++c) sum[c] = padded[c];
  for (int k = 1; k <= 2 * radius; ++k) {
    for (int c = 0; c < depth; ++c) sum[c] += padded[c + k];
  }
}

// The tutorial's beta, 0.75: scale = norm ** -0.75 and inverse_norm = 1 / norm
// from two inverse square roots, s = norm ** -0.5 and t = s ** -0.5 =
// norm ** 0.25: scale = s * s * t, inverse_norm = s * s. With AVX-512, the
// CPU's 14-bit estimate of 1 / sqrt and one Newton step come within a few
// float32 ulps at a fraction of the cost of square roots and divides;
// elsewhere the compiler vectorizes the plain expressions.
__attribute__((always_inline)) inline void ThreeQuarterPowers(
    int depth, const float* __restrict__ norm, float* __restrict__ scale,
    float* __restrict__ inverse_norm) {
  int c = 0;
#if defined(__AVX512F__)
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 three_halves = _mm512_set1_ps(1.5f);
  auto inverse_sqrt = [&](__m512 v) {
    __m512 y = _mm512_rsqrt14_ps(v);
    __m512 half_v_y = _mm512_mul_ps(_mm512_mul_ps(half, v), y);
    return _mm512_mul_ps(y, _mm512_fnmadd_ps(half_v_y, y, three_halves));
  };
  for (; c + 16 <= depth; c += 16) {
    __m512 s = inverse_sqrt(_mm512_loadu_ps(norm + c));
    __m512 s_squared = _mm512_mul_ps(s, s);
    _mm512_storeu_ps(scale + c, _mm512_mul_ps(s_squared, inverse_sqrt(s)));
    _mm512_storeu_ps(inverse_norm + c, s_squared);
  }
#endif
  for (; c < depth; ++c) {
    float s = 1.f / std::sqrt(norm[c]);
    scale[c] = s * std::sqrt(s);
    inverse_norm[c] = s * s;
  }
}

// Pixels a kernel takes at a time: each step below runs over all of them
// before the next reads what it wrote, so that a window sum's unaligned
// loads find the stores before them already in the cache (loads that
// straddle stores still in flight stall until those stores are written).
constexpr int kBlock = 8;

// The floats a shard's buffer holds, zeroed: two padded rows per pixel of a
// block (squares, products), one row per pixel of g * scale, and four
// rows for one pixel at a time (norm, scale, inverse_norm, sum).
constexpr int BufferFloats(int depth, int radius) {
  return 2 * kBlock * (depth + 2 * radius) + kBlock * depth + 4 * depth;
}

// padded[radius + c] = x[c] ** 2 for one pixel.
template <typename T>
__attribute__((always_inline)) inline void Squares(
    int depth, int radius, const T* __restrict__ xs,
    float* __restrict__ padded) {
  for (int c = 0; c < depth; ++c) {
    const float value = Load(xs[c]);
    padded[radius + c] = value * value;
  }
}

// norm = bias + alpha * (window sum of x**2); scale = norm ** -beta;
// inverse_norm = 1 / norm. squares: the pixel's padded squares.
__attribute__((always_inline)) inline void NormAndScale(
    const Params& p, int depth, int radius, const float* __restrict__ squares,
    float* __restrict__ norm, float* __restrict__ scale,
    float* __restrict__ inverse_norm) {
  WindowSum(depth, radius, squares, norm);
  for (int c = 0; c < depth; ++c) norm[c] = p.bias + p.alpha * norm[c];
  if (p.beta == 0.75f) {
    ThreeQuarterPowers(depth, norm, scale, inverse_norm);
  } else {
    for (int c = 0; c < depth; ++c) scale[c] = std::pow(norm[c], -p.beta);
    for (int c = 0; c < depth; ++c) inverse_norm[c] = 1.f / norm[c];
  }
}

// The parts of a shard's buffer (BufferFloats of them).
struct Rows {
  float* squares;   // kBlock padded rows: x ** 2
  float* products;  // kBlock padded rows: g * x * scale / norm
  float* g_scale;   // kBlock rows: g * scale
  float* norm;      // then one row each, for one pixel at a time
  float* scale;
  float* inverse_norm;
  float* sum;
};

inline Rows Layout(float* buffer, int depth, int radius) {
  const int padded_rows = kBlock * (depth + 2 * radius);
  Rows rows;
  rows.squares = buffer;
  rows.products = rows.squares + padded_rows;
  rows.g_scale = rows.products + padded_rows;
  rows.norm = rows.g_scale + kBlock * depth;
  rows.scale = rows.norm + depth;
  rows.inverse_norm = rows.scale + depth;
  rows.sum = rows.inverse_norm + depth;
  return rows;
}

// Takes the pixels [first, end) a block at a time: the block's squares,
// then each pixel's norm, scale and inverse_norm, for per_pixel(i, pixel)
// (i: its place in the block), then after_block(start, pixels).
template <typename T, typename PerPixel, typename AfterBlock>
__attribute__((always_inline)) inline void ByBlocks(
    const Params& p, int depth, int radius, int64_t first, int64_t end,
    const T* __restrict__ in, const Rows& rows, PerPixel per_pixel,
    AfterBlock after_block) {
  const int row = depth + 2 * radius;
  for (int64_t start = first; start < end; start += kBlock) {
    const int pixels = static_cast<int>(std::min<int64_t>(kBlock, end - start));
    for (int i = 0; i < pixels; ++i) {
      Squares(depth, radius, in + (start + i) * depth, rows.squares + i * row);
    }
    for (int i = 0; i < pixels; ++i) {
      NormAndScale(p, depth, radius, rows.squares + i * row, rows.norm,
                   rows.scale, rows.inverse_norm);
      per_pixel(i, start + i);
    }
    after_block(start, pixels);
  }
}

// y = x * scale.
template <typename T>
__attribute__((always_inline)) inline void Forward(
    const Params& p, int depth, int radius, int64_t first, int64_t end,
    const T* __restrict__ in, T* __restrict__ out, float* buffer) {
  const Rows rows = Layout(buffer, depth, radius);
  ByBlocks(
      p, depth, radius, first, end, in, rows,
      [&](int, int64_t pixel) {
        const float* __restrict__ scale = rows.scale;
        const T* xs = in + pixel * depth;
        T* ys = out + pixel * depth;
        for (int c = 0; c < depth; ++c) Store(Load(xs[c]) * scale[c], ys + c);
      },
      [](int64_t, int) {});
}

// dx = g * scale - 2 alpha beta x * window_sum(g * x * scale / norm).
template <typename T>
__attribute__((always_inline)) inline void Backward(
    const Params& p, int depth, int radius, int64_t first, int64_t end,
    const T* __restrict__ grads, const T* __restrict__ in,
    T* __restrict__ out, float* buffer) {
  const int row = depth + 2 * radius;
  const Rows rows = Layout(buffer, depth, radius);
  const float two_alpha_beta = 2.f * p.alpha * p.beta;
  ByBlocks(
      p, depth, radius, first, end, in, rows,
      [&](int i, int64_t pixel) {
        const T* xs = in + pixel * depth;
        const T* gs = grads + pixel * depth;
        const float* __restrict__ scale = rows.scale;
        const float* __restrict__ inverse_norm = rows.inverse_norm;
        float* __restrict__ product = rows.products + i * row + radius;
        float* __restrict__ g_scaled = rows.g_scale + i * depth;
        for (int c = 0; c < depth; ++c) {
          const float g = Load(gs[c]);
          product[c] = g * Load(xs[c]) * scale[c] * inverse_norm[c];
          g_scaled[c] = g * scale[c];
        }
      },
      [&](int64_t start, int pixels) {
        for (int i = 0; i < pixels; ++i) {
          float* __restrict__ sum = rows.sum;
          WindowSum(depth, radius, rows.products + i * row, sum);
          const T* xs = in + (start + i) * depth;
          const float* __restrict__ g_scaled = rows.g_scale + i * depth;
          T* dxs = out + (start + i) * depth;
          for (int c = 0; c < depth; ++c) {
            Store(g_scaled[c] - two_alpha_beta * Load(xs[c]) * sum[c],
                  dxs + c);
          }
        }
      });
}

// The network's shape: 64 channels, depth_radius 4.
constexpr int kDepth = 64;
constexpr int kRadius = 4;

class LrnBase : public OpKernel {
 public:
  explicit LrnBase(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("depth_radius", &params_.radius));
    OP_REQUIRES_OK(context, context->GetAttr("bias", &params_.bias));
    OP_REQUIRES_OK(context, context->GetAttr("alpha", &params_.alpha));
    OP_REQUIRES_OK(context, context->GetAttr("beta", &params_.beta));
  }

 protected:
  // Runs work(depth, radius, first_pixel, end_pixel, buffer) over all
  // pixels, split across the session's intra-op threads, with depth and
  // radius compile-time constants where they are the network's. buffer
  // holds BufferFloats(depth, radius) floats, zeroed, for the shard.
  template <typename Work>
  void ForPixels(OpKernelContext* context, int64_t pixels, int depth,
                 Work work) {
    const int radius = params_.radius;
    auto* threads = context->device()->tensorflow_cpu_worker_threads();
    tensorflow::Shard(
        threads->num_threads, threads->workers, pixels,
        /*cost_per_unit=*/20 * depth, [&](int64_t first, int64_t end) {
          if (depth == kDepth && radius == kRadius) {
            float buffer[BufferFloats(kDepth, kRadius)] = {};
            work(kDepth, kRadius, first, end, buffer);
          } else {
            std::vector<float> buffer(BufferFloats(depth, radius), 0.f);
            work(depth, radius, first, end, buffer.data());
          }
        });
  }

  Params params_;
};

template <typename T>
class LrnOp : public LrnBase {
 public:
  using LrnBase::LrnBase;

  void Compute(OpKernelContext* context) override {
    const Tensor& x = context->input(0);
    OP_REQUIRES(context, x.dims() == 4,
                tensorflow::errors::InvalidArgument(
                    "TutorialLrn needs a 4-D tensor, got shape ",
                    x.shape().DebugString()));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, x.shape(), &y));
    const int depth = static_cast<int>(x.dim_size(3));
    if (x.NumElements() == 0) return;
    const T* in = x.flat<T>().data();
    T* out = y->flat<T>().data();
    const Params p = params_;
    ForPixels(context, x.NumElements() / depth, depth,
              [&](int d, int r, int64_t first, int64_t end, float* buffer) {
                Forward(p, d, r, first, end, in, out, buffer);
              });
  }
};

template <typename T>
class LrnGradOp : public LrnBase {
 public:
  using LrnBase::LrnBase;

  void Compute(OpKernelContext* context) override {
    const Tensor& grads = context->input(0);
    const Tensor& x = context->input(1);
    OP_REQUIRES(context, x.dims() == 4 && grads.shape() == x.shape(),
                tensorflow::errors::InvalidArgument(
                    "TutorialLrnGrad needs grads and x of one 4-D shape, got ",
                    grads.shape().DebugString(), " and ",
                    x.shape().DebugString()));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, x.shape(), &dx));
    const int depth = static_cast<int>(x.dim_size(3));
    if (x.NumElements() == 0) return;
    const T* gs = grads.flat<T>().data();
    const T* in = x.flat<T>().data();
    T* out = dx->flat<T>().data();
    const Params p = params_;
    ForPixels(context, x.NumElements() / depth, depth,
              [&](int d, int r, int64_t first, int64_t end, float* buffer) {
                Backward(p, d, r, first, end, gs, in, out, buffer);
              });
  }
};

#define REGISTER(T)                                                     \
  REGISTER_KERNEL_BUILDER(                                              \
      Name("TutorialLrn").Device(tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      LrnOp<T>);                                                        \
  REGISTER_KERNEL_BUILDER(Name("TutorialLrnGrad")                       \
                              .Device(tensorflow::DEVICE_CPU)           \
                              .TypeConstraint<T>("T"),                  \
                          LrnGradOp<T>);

REGISTER(float)
REGISTER(tensorflow::bfloat16)

}  // namespace
