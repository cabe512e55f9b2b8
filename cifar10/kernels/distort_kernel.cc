// The tutorial's training-image distortions as one fused CPU kernel: for
// each uint8 image of a batch, a crop at a given offset, mirrored or not,
// the contrast scaled by a given factor around each channel's mean, then
// per-image standardisation, written as float32.
//
// The same function as cifar10_input.distort_images's TensorFlow ops
// (tf.image's per-image functions, batched), which make a dozen passes over
// the batch, several of them broadcasting a per-channel value across the
// pixels, slowly. Here each image is read twice (its crop's per-channel
// sums, exact in integers, then the output) and written once. The brightness
// change is not an input: per-image standardisation subtracts the image's
// mean, so a constant added to every pixel leaves the output as it was.
// The images may come in the records' own depth-major layout [batch,
// channel, row, column], which saves the transpose to NHWC; the output is
// NHWC either way. Built by cifar10/kernels/build.py;
// tests/test_cifar10_input.py checks it against tf.image.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::errors::InvalidArgument;

REGISTER_OP("TutorialDistortImages")
    .Input("images: uint8")
    .Input("offset_y: int32")
    .Input("offset_x: int32")
    .Input("flip: bool")
    .Input("contrast_factor: float")
    .Output("distorted: float")
    .Attr("size: int >= 1")
    .Attr("depth_major: bool = false")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      tensorflow::shape_inference::ShapeHandle images;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &images));
      int64_t size;
      bool depth_major;
      TF_RETURN_IF_ERROR(c->GetAttr("size", &size));
      TF_RETURN_IF_ERROR(c->GetAttr("depth_major", &depth_major));
      c->set_output(0, c->MakeShape({c->Dim(images, 0), size, size,
                                     c->Dim(images, depth_major ? 1 : 3)}));
      return tensorflow::OkStatus();
    })
    .Doc("Crop, mirror, contrast and per-image standardisation of a batch.");

class DistortImagesOp : public OpKernel {
 public:
  explicit DistortImagesOp(OpKernelConstruction* context) : OpKernel(context) {
    int64_t size;
    OP_REQUIRES_OK(context, context->GetAttr("size", &size));
    size_ = static_cast<int>(size);
    OP_REQUIRES_OK(context, context->GetAttr("depth_major", &depth_major_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& images = context->input(0);
    OP_REQUIRES(context, images.dims() == 4,
                InvalidArgument("TutorialDistortImages needs a 4-D batch of "
                                "images, got shape ",
                                images.shape().DebugString()));
    const int64_t batch = images.dim_size(0);
    const int channels =
        static_cast<int>(images.dim_size(depth_major_ ? 1 : 3));
    const int height = static_cast<int>(images.dim_size(depth_major_ ? 2 : 1));
    const int width = static_cast<int>(images.dim_size(depth_major_ ? 3 : 2));
    OP_REQUIRES(context, height >= size_ && width >= size_ && channels > 0,
                InvalidArgument("TutorialDistortImages cannot crop ", size_,
                                "x", size_, " from images of shape ",
                                images.shape().DebugString()));
    const Tensor* per_image[4];
    const char* names[4] = {"offset_y", "offset_x", "flip", "contrast_factor"};
    for (int i = 0; i < 4; ++i) {
      per_image[i] = &context->input(i + 1);
      OP_REQUIRES(context,
                  per_image[i]->dims() == 1 &&
                      per_image[i]->dim_size(0) == batch,
                  InvalidArgument("TutorialDistortImages needs one ", names[i],
                                  " per image (", batch, "), got shape ",
                                  per_image[i]->shape().DebugString()));
    }
    const int32_t* offset_y = per_image[0]->flat<int32_t>().data();
    const int32_t* offset_x = per_image[1]->flat<int32_t>().data();
    for (int64_t i = 0; i < batch; ++i) {
      OP_REQUIRES(context,
                  offset_y[i] >= 0 && offset_y[i] <= height - size_ &&
                      offset_x[i] >= 0 && offset_x[i] <= width - size_,
                  InvalidArgument("TutorialDistortImages: the crop of image ",
                                  i, " at (", offset_y[i], ", ", offset_x[i],
                                  ") does not fit in ", height, "x", width));
    }
    Tensor* output = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, {batch, size_, size_, channels}, &output));
    if (batch == 0) return;
    Shape shape{size_, height, width, channels, depth_major_};
    const uint8_t* in = images.flat<uint8_t>().data();
    const bool* flip = per_image[2]->flat<bool>().data();
    const float* factor = per_image[3]->flat<float>().data();
    float* out = output->flat<float>().data();
    // In the calling thread, not split over the session's intra-op threads:
    // those are the training step's, and the input pipeline has threads of
    // its own (docs/performance.md: the loops with the distortions kernel
    // on and off).
    std::vector<int64_t> sums(2 * channels);
    std::vector<double> stats(2 * channels);
    for (int64_t i = 0; i < batch; ++i) {
      DistortOne(shape, in + i * height * width * channels, offset_y[i],
                 offset_x[i], flip[i], factor[i],
                 out + i * size_ * size_ * channels, sums.data(),
                 stats.data());
    }
  }

 private:
  struct Shape {
    int size, height, width, channels;
    bool depth_major;
    // Where pixel (y, x)'s channel c is in an input image.
    int64_t At(int y, int x, int c) const {
      return depth_major ? (static_cast<int64_t>(c) * height + y) * width + x
                         : (static_cast<int64_t>(y) * width + x) * channels + c;
    }
  };

  // sums and stats hold 2 * channels values each: scratch.
  static void DistortOne(const Shape& s, const uint8_t* image, int top,
                         int left, bool flip, float contrast, float* out,
                         int64_t* sums, double* stats) {
    const int channels = s.channels;
    // The crop's per-channel sums and sums of squares, exact, each channel's
    // plane read in order.
    for (int c = 0; c < channels; ++c) {
      int64_t sum = 0, squares = 0;
      for (int y = 0; y < s.size; ++y) {
        for (int x = 0; x < s.size; ++x) {
          const int64_t v = image[s.At(top + y, left + x, c)];
          sum += v;
          squares += v * v;
        }
      }
      sums[c] = sum;
      sums[channels + c] = squares;
    }
    // tf.image.adjust_contrast: (x - m_c) * f + m_c per channel; then
    // standardisation: (y - mean) / max(stddev, 1 / sqrt(pixels * channels)),
    // whose mean and variance follow from the channels' own.
    const double pixels = static_cast<double>(s.size) * s.size;
    const double f = contrast;
    // stats: each channel's (m_c - mean) / stddev, then its mean m_c.
    double* means = stats + channels;
    double mean = 0;
    for (int c = 0; c < channels; ++c) {
      means[c] = sums[c] / pixels;
      mean += means[c];
    }
    mean /= channels;
    double variance = 0;
    for (int c = 0; c < channels; ++c) {
      const double within =
          std::max(0.0, sums[channels + c] / pixels - means[c] * means[c]);
      variance += f * f * within + (means[c] - mean) * (means[c] - mean);
    }
    variance /= channels;
    const double stddev =
        std::max(std::sqrt(variance), 1.0 / std::sqrt(pixels * channels));
    // Each output is (x - m_c) * scale + (m_c - mean) / stddev: computed
    // so, not as x * scale + an offset, a flat channel gives exactly 0.
    const float scale = static_cast<float>(f / stddev);
    for (int c = 0; c < channels; ++c) {
      stats[c] = (means[c] - mean) / stddev;
    }
    for (int y = 0; y < s.size; ++y) {
      for (int x = 0; x < s.size; ++x) {
        const int source_x = left + (flip ? s.size - 1 - x : x);
        float* pixel = out + (static_cast<int64_t>(y) * s.size + x) * channels;
        for (int c = 0; c < channels; ++c) {
          pixel[c] = (image[s.At(top + y, source_x, c)] -
                      static_cast<float>(means[c])) * scale +
                     static_cast<float>(stats[c]);
        }
      }
    }
  }

  int size_;
  bool depth_major_;
};

REGISTER_KERNEL_BUILDER(
    Name("TutorialDistortImages").Device(tensorflow::DEVICE_CPU),
    DistortImagesOp);

}  // namespace
