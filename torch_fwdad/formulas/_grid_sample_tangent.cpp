// The values-only tangent of grid_sampler_2d/3d in one pass (formulas/grid_sample_tangent.py loads it).
//
// torch_fwdad::grid_sample_tangent computes, for out[n,c,p] = Σ_taps w_tap(x) input[n,c,tap],
//     ȯut[n,c,p] = Σ_taps w_tap · input_t[n,c,tap] + Σ_taps (Σ_d ∂w_tap/∂x_d · ẋ_d) · input[n,c,tap],
// with x_d the source coordinate along spatial dimension d (x first) and ẋ_d = (∂x_d/∂g_d)·ġ_d.
// Each point's taps, weights, weight rates and ẋ are computed once, for a block of points,
// and then every channel runs over that block: PyTorch has no kernel returning ∂out/∂grid
// per channel (its backward sums over channels), which is what the Python path pays for.
// Either tangent may be absent. The coordinate helpers are ATen's own (ATen/native/GridSampler.h),
// so padding (zeros, border, reflection), align_corners, the slope conventions (0 where a
// coordinate is clipped, a sign flip per reflection) and nearest rounding are PyTorch's.
// Nearest is piecewise constant in the grid: no grid term, as PyTorch's grid gradient.
//
// formulas/vision.py calls it only where nothing can differentiate the result (no autograd,
// no torch.func level above, no dispatch mode, plain CPU tensors): it reads raw buffers.
#include "_extension_module.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/native/GridSampler.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

using at::native::GridSamplerInterpolation;
using at::native::GridSamplerPadding;

constexpr int kMaxDims = 3;
constexpr int kMaxTaps = 16;     // bicubic 2-D: 4 x 4
constexpr int64_t kBlock = 64;   // points whose taps are held at once
constexpr int64_t kBilinearBlock = 256;  // the same in the 2-D bilinear path
// elementary steps worth a task of their own: at::internal::GRAIN_SIZE, whose header
// (ATen/TensorIterator.h) costs more to compile than this file
constexpr int64_t kGrainSize = 32768;

// Cubic convolution weights of taps floor(x) - 1 ... + 2 at t = x - floor(x). The same as
// get_cubic_upsample_coefficients (ATen/native/UpSample.h, which pulls in far more headers).
template <typename scalar_t>
void cubic_weights(scalar_t w[4], scalar_t t) {
  const scalar_t A = -0.75;
  auto near = [A](scalar_t x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
  auto far = [A](scalar_t x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

template <typename scalar_t>
struct Problem {
  GridSamplerInterpolation mode;
  GridSamplerPadding padding;
  bool align_corners;
  int64_t size[kMaxDims];            // input size along x, y, z
  int64_t input_stride[kMaxDims];    // input strides along x, y, z
  int64_t tangent_stride[kMaxDims];  // input_t strides along x, y, z
};

// A grid (or its tangent) as raw strides: its points (z, y, x; x fastest) of batch entry n.
template <typename scalar_t>
struct GridView {
  const scalar_t* data = nullptr;  // null: no tangent
  int64_t batch_stride = 0;
  int64_t sizes[kMaxDims] = {1, 1, 1};
  int64_t strides[kMaxDims] = {0, 0, 0};
  int64_t coordinate_stride = 0;  // between x, y (and z) of one point
};

template <typename scalar_t>
GridView<scalar_t> grid_view(const at::Tensor& grid) {
  GridView<scalar_t> view;
  view.data = grid.const_data_ptr<scalar_t>();
  view.batch_stride = grid.stride(0);
  for (int64_t j = 0; j + 2 < grid.dim(); ++j) {
    view.sizes[j] = grid.size(1 + j);
    view.strides[j] = grid.stride(1 + j);
  }
  view.coordinate_stride = grid.stride(-1);
  return view;
}

// floor(x) by truncation (std::floor is a library call without SSE4.1): exact wherever the
// result fits an int64; elsewhere (NaN, |x| ≥ 2^63) the truncation gives INT64_MIN, as
// PyTorch's own cast of floor(x) does, and every tap of the point lies outside.
template <typename scalar_t>
inline int64_t floor_to_int(scalar_t x) {
  const int64_t truncated = static_cast<int64_t>(x);
  return truncated - (x < static_cast<scalar_t>(truncated));
}

// The taps of one point along one axis (kPerAxis: 1 nearest, 2 bilinear, 4 bicubic):
// offsets in input and input_t, weight, rate ∂weight/∂x · ẋ, and whether it lies inside.
template <typename scalar_t, int kPerAxis>
struct AxisTaps {
  int64_t input_offset[kPerAxis];
  int64_t tangent_offset[kPerAxis];
  scalar_t weight[kPerAxis];
  scalar_t rate[kPerAxis];
  bool inside[kPerAxis];
};

// coordinate_t: ġ along this axis (0 without a grid tangent).
template <typename scalar_t, int kPerAxis>
inline void axis_taps(const Problem<scalar_t>& problem, int d, scalar_t coordinate, scalar_t coordinate_t,
               AxisTaps<scalar_t, kPerAxis>& taps) {
  using namespace at::native;
  const int64_t size = problem.size[d];
  int64_t position[kPerAxis];
  scalar_t slope[kPerAxis];  // ∂weight/∂x
  scalar_t source_slope;     // ∂x/∂g
  if constexpr (kPerAxis == 4) {  // bicubic: padding applies to each tap, not to x
    const scalar_t x = grid_sampler_unnormalize_set_grad(coordinate, size, problem.align_corners, &source_slope);
    const scalar_t floor_x = static_cast<scalar_t>(floor_to_int(x));
    const scalar_t t = x - floor_x;
    scalar_t gradient[4];
    cubic_weights(taps.weight, t);
    get_cubic_coefficients_grad(gradient, t);  // −∂weight/∂t
    for (int k = 0; k < 4; ++k) {
      // get_value_bounded: the tap's coordinate through the padding, then truncated
      position[k] = static_cast<int64_t>(
          compute_coordinates(floor_x - 1 + k, size, problem.padding, problem.align_corners));
      slope[k] = -gradient[k];
    }
  } else {
    const scalar_t x = grid_sampler_compute_source_index_set_grad(coordinate, size, problem.padding,
                                                                  problem.align_corners, &source_slope);
    if constexpr (kPerAxis == 1) {  // nearest
      position[0] = static_cast<int64_t>(std::rint(x));  // nearbyint's rounding (half to even), cheaper
      taps.weight[0] = 1;
      slope[0] = 0;
    } else {  // bilinear
      position[0] = floor_to_int(x);
      const scalar_t t = x - static_cast<scalar_t>(position[0]);
      position[1] = position[0] + 1;
      taps.weight[0] = 1 - t;
      taps.weight[1] = t;
      slope[0] = -1;
      slope[1] = 1;
    }
  }
  const scalar_t source_rate = source_slope * coordinate_t;  // ẋ
  for (int k = 0; k < kPerAxis; ++k) {
    taps.inside[k] = position[k] >= 0 && position[k] < size;
    taps.input_offset[k] = position[k] * problem.input_stride[d];
    taps.tangent_offset[k] = position[k] * problem.tangent_stride[d];
    taps.rate[k] = slope[k] * source_rate;
  }
}

// The taps inside the input of a block of points, compacted: count[i] of them for point i,
// with their offsets in input and input_t, weights and weight rates Σ_d ∂w/∂x_d ẋ_d, at
// [i·kTaps + k] (kTaps: the taps of a point in the mode at hand, so that they stay dense).
template <typename scalar_t>
struct BlockTaps {
  int count[kBlock];
  int64_t input_offset[kBlock * kMaxTaps];
  int64_t tangent_offset[kBlock * kMaxTaps];
  scalar_t weight[kBlock * kMaxTaps];
  scalar_t rate[kBlock * kMaxTaps];
};

template <int kDims, int kPerAxis>
constexpr int kTapsOf = kDims == 2 ? kPerAxis * kPerAxis : kPerAxis * kPerAxis * kPerAxis;

// Point i's taps: products over the axes (W = Π_d w_d, R = Σ_d r_d Π_{e≠d} w_e). A tap outside
// is skipped, not weighted by 0 (inf·0 would be NaN); each one is written, and kept if inside.
template <typename scalar_t, int kDims, int kPerAxis>
inline void point_taps(const AxisTaps<scalar_t, kPerAxis> (&axes)[kDims], BlockTaps<scalar_t>& block, int64_t i) {
  const int64_t first = i * kTapsOf<kDims, kPerAxis>;
  int kept = 0;
  auto keep = [&](bool inside, scalar_t weight, scalar_t rate, int64_t input_offset, int64_t tangent_offset) {
    block.weight[first + kept] = weight;
    block.rate[first + kept] = rate;
    block.input_offset[first + kept] = input_offset;
    block.tangent_offset[first + kept] = tangent_offset;
    kept += inside;
  };
  const auto& ax = axes[0];
  const auto& ay = axes[1];
  if constexpr (kDims == 2) {
    for (int ky = 0; ky < kPerAxis; ++ky) {
      for (int kx = 0; kx < kPerAxis; ++kx) {
        keep(ax.inside[kx] && ay.inside[ky], ax.weight[kx] * ay.weight[ky],
             ax.rate[kx] * ay.weight[ky] + ax.weight[kx] * ay.rate[ky], ax.input_offset[kx] + ay.input_offset[ky],
             ax.tangent_offset[kx] + ay.tangent_offset[ky]);
      }
    }
  } else {
    const auto& az = axes[2];
    for (int kz = 0; kz < kPerAxis; ++kz) {
      for (int ky = 0; ky < kPerAxis; ++ky) {
        const scalar_t wyz = ay.weight[ky] * az.weight[kz];
        const scalar_t ryz = ay.rate[ky] * az.weight[kz] + ay.weight[ky] * az.rate[kz];
        for (int kx = 0; kx < kPerAxis; ++kx) {
          keep(ax.inside[kx] && ay.inside[ky] && az.inside[kz], ax.weight[kx] * wyz,
               ax.rate[kx] * wyz + ax.weight[kx] * ryz,
               ax.input_offset[kx] + ay.input_offset[ky] + az.input_offset[kz],
               ax.tangent_offset[kx] + ay.tangent_offset[ky] + az.tangent_offset[kz]);
        }
      }
    }
  }
  block.count[i] = kept;
}

// The taps of points start ... start + length - 1 of batch entry n.
template <typename scalar_t, int kDims, int kPerAxis>
inline void block_taps(const Problem<scalar_t>& problem, const GridView<scalar_t>& grid, const GridView<scalar_t>& grid_t,
                int64_t n, int64_t start, int64_t length, BlockTaps<scalar_t>& block) {
  int64_t index[kDims];  // the point's index along each output dim, the last fastest
  int64_t rest = start;
  for (int j = kDims - 1; j >= 0; --j) {
    index[j] = rest % grid.sizes[j];
    rest /= grid.sizes[j];
  }
  const bool has_grid_t = grid_t.data != nullptr;
  for (int64_t i = 0; i < length; ++i) {
    int64_t offset = n * grid.batch_stride, offset_t = n * grid_t.batch_stride;
    for (int j = 0; j < kDims; ++j) {
      offset += index[j] * grid.strides[j];
      offset_t += index[j] * grid_t.strides[j];
    }
    AxisTaps<scalar_t, kPerAxis> axes[kDims];
    for (int d = 0; d < kDims; ++d) {
      const scalar_t coordinate_t = has_grid_t ? grid_t.data[offset_t + d * grid_t.coordinate_stride] : scalar_t(0);
      axis_taps(problem, d, grid.data[offset + d * grid.coordinate_stride], coordinate_t, axes[d]);
    }
    point_taps<scalar_t, kDims, kPerAxis>(axes, block, i);
    for (int j = kDims - 1; j >= 0 && ++index[j] == grid.sizes[j]; --j) {
      index[j] = 0;
    }
  }
}

// One channel over a block: out[i] = Σ_taps weight·input_t[tap] + rate·input[tap]. Points
// with every tap inside (most) take a loop of fixed length, which the compiler unrolls.
template <typename scalar_t, int kTaps, bool kInputTangent, bool kGridTangent>
void channel_over_block(const BlockTaps<scalar_t>& block, int64_t points, const scalar_t* input,
                        const scalar_t* input_t, scalar_t* out) {
  auto tap = [&](int64_t j) {
    scalar_t term = 0;
    if constexpr (kInputTangent) {
      term += block.weight[j] * input_t[block.tangent_offset[j]];
    }
    if constexpr (kGridTangent) {
      term += block.rate[j] * input[block.input_offset[j]];
    }
    return term;
  };
  for (int64_t i = 0; i < points; ++i) {
    const int64_t first = i * kTaps;
    scalar_t total = 0;
    if (block.count[i] == kTaps) {
      for (int k = 0; k < kTaps; ++k) {
        total += tap(first + k);
      }
    } else {
      for (int k = 0; k < block.count[i]; ++k) {
        total += tap(first + k);
      }
    }
    out[i] = total;
  }
}

template <typename scalar_t, int kTaps>
void channel_over_block(const BlockTaps<scalar_t>& block, int64_t points, const scalar_t* input,
                        const scalar_t* input_t, scalar_t* out, bool has_input_t, bool has_grid_t) {
  if (has_input_t && has_grid_t) {
    channel_over_block<scalar_t, kTaps, true, true>(block, points, input, input_t, out);
  } else if (has_input_t) {
    channel_over_block<scalar_t, kTaps, true, false>(block, points, input, input_t, out);
  } else {
    channel_over_block<scalar_t, kTaps, false, true>(block, points, input, input_t, out);
  }
}

// Block by block: the taps of kBlock points, then every channel over them.
template <typename scalar_t, int kDims, int kPerAxis>
void blocks_of_points(const Problem<scalar_t>& problem, const GridView<scalar_t>& grid,
                      const GridView<scalar_t>& grid_t, const scalar_t* input, const int64_t (&input_strides)[2],
                      const scalar_t* input_t, const int64_t (&tangent_strides)[2], scalar_t* out, int64_t C,
                      int64_t points, int64_t first, int64_t last) {
  constexpr int kTaps = kTapsOf<kDims, kPerAxis>;
  const int64_t blocks = (points + kBlock - 1) / kBlock;
  BlockTaps<scalar_t> block;
  for (int64_t item = first; item < last; ++item) {
    const int64_t n = item / blocks, start = (item % blocks) * kBlock;
    const int64_t length = std::min(kBlock, points - start);
    block_taps<scalar_t, kDims, kPerAxis>(problem, grid, grid_t, n, start, length, block);
    for (int64_t c = 0; c < C; ++c) {
      const scalar_t* input_channel = input + n * input_strides[0] + c * input_strides[1];
      const scalar_t* tangent_channel =
          input_t != nullptr ? input_t + n * tangent_strides[0] + c * tangent_strides[1] : nullptr;
      channel_over_block<scalar_t, kTaps>(block, length, input_channel, tangent_channel,
                                          out + (n * C + c) * points + start, input_t != nullptr,
                                          grid_t.data != nullptr);
    }
  }
}

// 2-D bilinear, the common mode, over structure-of-arrays blocks: each point's 4 taps are
// computed once per block, each channel then loads its 8 values (4 taps of input and
// input_t) by scalar loads and does its arithmetic in loops the compiler vectorizes
// (#pragma omp simd). A tap outside the input is loaded from a position clamped inside and
// its term dropped by a bitwise and, not weighted by 0 (inf·0 would be NaN): the same taps
// count as in the general path above.
// Each of its functions is compiled into bilinear_blocks_baseline (any x86-64: the wheel's
// SSE2 baseline) and, where the compiler can target AVX2 function by function (GCC, clang on
// x86-64), into bilinear_blocks_avx2, chosen at run time (bilinear_blocks_for_cpu): always
// inlined, so that each copy is compiled for its target. No FMA: the two give the same bits.
#if defined(__GNUC__)
#define BILINEAR_INLINE inline __attribute__((always_inline))
#else
#define BILINEAR_INLINE inline
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#define BILINEAR_AVX2 1
#else
#define BILINEAR_AVX2 0
#endif

template <typename scalar_t>
using LaneMask = std::conditional_t<sizeof(scalar_t) == 4, int32_t, int64_t>;  // as wide as a lane

// condition ? a : b by bits: the compiler vectorizes it where it would not speculate the
// floating-point operation of a select's branch (it may trap).
template <typename scalar_t>
inline scalar_t bit_select(bool condition, scalar_t a, scalar_t b) {
  const LaneMask<scalar_t> mask = -static_cast<LaneMask<scalar_t>>(condition);
  return __builtin_bit_cast(scalar_t, (__builtin_bit_cast(LaneMask<scalar_t>, a) & mask) |
                                          (__builtin_bit_cast(LaneMask<scalar_t>, b) & ~mask));
}

template <typename scalar_t>
struct BilinearAxes {  // [axis: x, y][tap: floor, floor + 1][point] of one block
  scalar_t x[2][kBilinearBlock];      // the grid's coordinate, then the source coordinate
  scalar_t rate[2][kBilinearBlock];   // the grid tangent's coordinate, then ẋ
  scalar_t t[2][kBilinearBlock];      // x - floor(x)
  // reflection padding: one axis's grid coordinates and their tangents, and whether ATen's
  // function computes the point (more than one reflection, NaN)
  scalar_t grid_coordinate[kBilinearBlock];
  scalar_t grid_rate[kBilinearBlock];
  LaneMask<scalar_t> by_aten[kBilinearBlock];
  LaneMask<scalar_t> inside[2][2][kBilinearBlock];
  int64_t input_offset[2][2][kBilinearBlock];
  int64_t tangent_offset[2][2][kBilinearBlock];
};

template <typename scalar_t>
struct BilinearTaps {  // [tap: (x0, y0), (x1, y0), (x0, y1), (x1, y1)][point] of one block
  LaneMask<scalar_t> inside[4][kBilinearBlock];
  int64_t input_offset[4][kBilinearBlock];
  int64_t tangent_offset[4][kBilinearBlock];
  scalar_t weight[4][kBilinearBlock];
  scalar_t rate[4][kBilinearBlock];
};

// The grid's (and its tangent's) coordinates of points start ... start + length - 1 of
// batch entry n, into axes.x and axes.rate.
template <typename scalar_t>
BILINEAR_INLINE void bilinear_coordinates(const GridView<scalar_t>& grid, const GridView<scalar_t>& grid_t, int64_t n,
                                          int64_t start, int64_t length, BilinearAxes<scalar_t>& axes) {
  int64_t h = start / grid.sizes[1], w = start % grid.sizes[1];  // the output's
  for (int64_t i = 0; i < length; ++i) {
    const scalar_t* point = grid.data + n * grid.batch_stride + h * grid.strides[0] + w * grid.strides[1];
    axes.x[0][i] = point[0];
    axes.x[1][i] = point[grid.coordinate_stride];
    if (grid_t.data != nullptr) {
      const scalar_t* point_t = grid_t.data + n * grid_t.batch_stride + h * grid_t.strides[0] + w * grid_t.strides[1];
      axes.rate[0][i] = point_t[0];
      axes.rate[1][i] = point_t[grid_t.coordinate_stride];
    } else {
      axes.rate[0][i] = axes.rate[1][i] = 0;
    }
    if (++w == grid.sizes[1]) {
      w = 0;
      ++h;
    }
  }
}

// Axis d: the source coordinate x of each point and ẋ = ∂x/∂g · ġ, as ATen's
// grid_sampler_compute_source_index_set_grad gives them: in loops the compiler vectorizes,
// with the same operations in the same order (so the same bits), and by ATen's function
// itself where reflection takes more than that (see below).
template <typename scalar_t>
BILINEAR_INLINE void bilinear_source_index(const Problem<scalar_t>& problem, int d, int64_t length,
                                           BilinearAxes<scalar_t>& axes) {
  using namespace at::native;
  const int64_t size = problem.size[d];
  scalar_t* x = axes.x[d];
  scalar_t* rate = axes.rate[d];
  const bool reflection = problem.padding == GridSamplerPadding::Reflection;
  // reflect_coordinates_set_grad's interval [low, low + span], from twice its ends
  const int64_t twice_low = problem.align_corners ? 0 : -1;
  const int64_t twice_high = problem.align_corners ? 2 * (size - 1) : 2 * size - 1;
  auto source_index_by_aten = [&](int64_t i, scalar_t coordinate, scalar_t coordinate_t) {
    scalar_t slope;
    x[i] = grid_sampler_compute_source_index_set_grad(coordinate, size, problem.padding, problem.align_corners, &slope);
    rate[i] = slope * coordinate_t;
  };
  if (reflection && twice_low == twice_high) {  // a single position (ATen's special case)
    for (int64_t i = 0; i < length; ++i) {
      source_index_by_aten(i, x[i], rate[i]);
    }
    return;
  }
  if (reflection) {
    std::copy(x, x + length, axes.grid_coordinate);
    std::copy(rate, rate + length, axes.grid_rate);
  }
  scalar_t slope;  // of the unnormalization, a constant
  grid_sampler_unnormalize_set_grad(scalar_t(0), size, problem.align_corners, &slope);
  const scalar_t size_minus_one = static_cast<scalar_t>(size - 1), size_as_scalar = static_cast<scalar_t>(size);
  if (problem.align_corners) {
#pragma omp simd
    for (int64_t i = 0; i < length; ++i) {
      x[i] = ((x[i] + 1) / 2) * size_minus_one;
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < length; ++i) {
      x[i] = ((x[i] + 1) * size_as_scalar - 1) / 2;
    }
  }
  if (problem.padding == GridSamplerPadding::Border) {  // clip_coordinates_set_grad: slope 0 where clipped
#pragma omp simd
    for (int64_t i = 0; i < length; ++i) {
      const bool low = x[i] <= 0, high = x[i] >= size_minus_one;
      x[i] = low ? scalar_t(0) : high ? size_minus_one : x[i];
      rate[i] = ((low || high) ? scalar_t(0) : slope) * rate[i];
    }
  } else if (reflection) {
    // reflect_coordinates_set_grad then clip_coordinates_set_grad where in = |x - low| <
    // 2 span (at most one reflection at each end), ATen's function elsewhere. There, in / span
    // rounds into [0, 1) or [1, 2), so floor(in / span) is 0 (even) or 1 (odd: in >= span),
    // and fmod(in, span) is in or in - span, both exact (Sterbenz).
    const scalar_t low = static_cast<scalar_t>(twice_low) / 2;
    const scalar_t span = static_cast<scalar_t>(twice_high - twice_low) / 2;
    const scalar_t twice_span = 2 * span;
#pragma omp simd
    for (int64_t i = 0; i < length; ++i) {
      const scalar_t shifted = x[i] - low;
      const bool negative = shifted < 0;
      const scalar_t in = negative ? -shifted : shifted;
      axes.by_aten[i] = !(in < twice_span);  // NaN too
      const bool odd = in >= span;
      const scalar_t extra = bit_select(odd, in - span, in);
      const scalar_t reflected = bit_select(odd, span - extra, extra) + low;
      const scalar_t reflection_slope = bit_select(negative != odd, scalar_t(-1), scalar_t(1));
      const bool clipped_low = reflected <= 0, clipped_high = reflected >= size_minus_one;
      x[i] = bit_select(clipped_low, scalar_t(0), bit_select(clipped_high, size_minus_one, reflected));
      const scalar_t clip_slope = bit_select(clipped_low || clipped_high, scalar_t(0), scalar_t(1));
      rate[i] = (slope * reflection_slope * clip_slope) * rate[i];
    }
    for (int64_t i = 0; i < length; ++i) {
      if (axes.by_aten[i]) {
        source_index_by_aten(i, axes.grid_coordinate[i], axes.grid_rate[i]);
      }
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < length; ++i) {
      rate[i] = slope * rate[i];
    }
  }
}

// Axis d: each point's two taps floor(x) and floor(x) + 1, as axis_taps<.., 2> above.
// floor(x) is taken as an int32 of x clamped into [-2, size + 1] (NaN to -2), which decides
// the same taps inside (none where x is outside (-1, size)).
template <typename scalar_t>
BILINEAR_INLINE void bilinear_axis_taps(const Problem<scalar_t>& problem, int d, int64_t length,
                                        BilinearAxes<scalar_t>& axes) {
  const int32_t size = static_cast<int32_t>(problem.size[d]);
  const int64_t input_stride = problem.input_stride[d], tangent_stride = problem.tangent_stride[d];
  const scalar_t low = -2, high = static_cast<scalar_t>(size) + 1;
#pragma omp simd
  for (int64_t i = 0; i < length; ++i) {
    const scalar_t x = axes.x[d][i];
    scalar_t clamped = x > low ? x : low;
    clamped = clamped < high ? clamped : high;
    int32_t floor_x = static_cast<int32_t>(clamped);
    floor_x -= clamped < static_cast<scalar_t>(floor_x);
    axes.t[d][i] = x - static_cast<scalar_t>(floor_x);
    auto tap = [&](int k) {
      const int32_t position = floor_x + k;
      const bool inside = (position >= 0) & (position < size);  // no branch
      const int64_t clamped_position = inside ? position : 0;  // any position inside: the term is dropped
      axes.inside[d][k][i] = -static_cast<LaneMask<scalar_t>>(inside);
      axes.input_offset[d][k][i] = clamped_position * input_stride;
      axes.tangent_offset[d][k][i] = clamped_position * tangent_stride;
    };
    tap(0);
    tap(1);
  }
}

template <typename scalar_t>
BILINEAR_INLINE void bilinear_axes(const Problem<scalar_t>& problem, const GridView<scalar_t>& grid,
                                   const GridView<scalar_t>& grid_t, int64_t n, int64_t start, int64_t length,
                                   BilinearAxes<scalar_t>& axes) {
  bilinear_coordinates(grid, grid_t, n, start, length, axes);
  for (int d = 0; d < 2; ++d) {
    bilinear_source_index(problem, d, length, axes);
    bilinear_axis_taps(problem, d, length, axes);
  }
}

// Tap (x0 + kx, y0 + ky)'s products over the axes, as point_taps above: W = w_x w_y,
// R = r_x w_y + w_x r_y.
template <int kx, int ky, typename scalar_t>
BILINEAR_INLINE void bilinear_tap(const BilinearAxes<scalar_t>& axes, int64_t length, BilinearTaps<scalar_t>& taps) {
  constexpr int k = 2 * ky + kx;
#pragma omp simd
  for (int64_t i = 0; i < length; ++i) {
    const scalar_t tx = axes.t[0][i], ty = axes.t[1][i];
    const scalar_t wx = kx ? tx : 1 - tx, wy = ky ? ty : 1 - ty;
    const scalar_t rx = kx ? axes.rate[0][i] : -axes.rate[0][i], ry = ky ? axes.rate[1][i] : -axes.rate[1][i];
    taps.inside[k][i] = axes.inside[0][kx][i] & axes.inside[1][ky][i];
    taps.input_offset[k][i] = axes.input_offset[0][kx][i] + axes.input_offset[1][ky][i];
    taps.tangent_offset[k][i] = axes.tangent_offset[0][kx][i] + axes.tangent_offset[1][ky][i];
    taps.weight[k][i] = wx * wy;
    taps.rate[k][i] = rx * wy + wx * ry;
  }
}

template <typename scalar_t>
BILINEAR_INLINE void bilinear_taps(const BilinearAxes<scalar_t>& axes, int64_t length, BilinearTaps<scalar_t>& taps) {
  bilinear_tap<0, 0>(axes, length, taps);
  bilinear_tap<1, 0>(axes, length, taps);
  bilinear_tap<0, 1>(axes, length, taps);
  bilinear_tap<1, 1>(axes, length, taps);
}

// One channel over points begin ... end - 1 of a block: their 4 taps' values of input and
// input_t by scalar loads, then out[i] = Σ_taps inside ? weight·input_t + rate·input : 0.
constexpr int64_t kChunk = 64;  // points whose values are held at once

// kSameOffsets: input and input_t have the same spatial strides (one offset load for both).
template <typename scalar_t, bool kInputTangent, bool kGridTangent, bool kSameOffsets>
BILINEAR_INLINE void bilinear_channel(const BilinearTaps<scalar_t>& taps, int64_t begin, int64_t end,
                                      const scalar_t* input, const scalar_t* input_t, scalar_t* out) {
  scalar_t values[4][kChunk], tangent_values[4][kChunk];
  const int64_t length = end - begin;
  for (int k = 0; k < 4; ++k) {
    for (int64_t i = 0; i < length; ++i) {
      const int64_t input_offset = taps.input_offset[k][begin + i];
      if constexpr (kGridTangent) {
        values[k][i] = input[input_offset];
      }
      if constexpr (kInputTangent) {
        tangent_values[k][i] = input_t[kSameOffsets ? input_offset : taps.tangent_offset[k][begin + i]];
      }
    }
  }
  auto contribution = [&](int k, int64_t i) {
    scalar_t term = 0;
    if constexpr (kInputTangent) {
      term += taps.weight[k][begin + i] * tangent_values[k][i];
    }
    if constexpr (kGridTangent) {
      term += taps.rate[k][begin + i] * values[k][i];
    }
    // the term where the tap is inside, +0 elsewhere: a bitwise and, which the compiler
    // vectorizes (a select it turns into a branch)
    return __builtin_bit_cast(scalar_t, __builtin_bit_cast(LaneMask<scalar_t>, term) & taps.inside[k][begin + i]);
  };
#pragma omp simd
  for (int64_t i = 0; i < length; ++i) {
    scalar_t total = 0;
    total += contribution(0, i);
    total += contribution(1, i);
    total += contribution(2, i);
    total += contribution(3, i);
    out[i] = total;
  }
}

template <typename scalar_t, bool kInputTangent, bool kGridTangent>
BILINEAR_INLINE void bilinear_blocks(const Problem<scalar_t>& problem, const GridView<scalar_t>& grid,
                                     const GridView<scalar_t>& grid_t, const scalar_t* input,
                                     const int64_t (&input_strides)[2], const scalar_t* input_t,
                                     const int64_t (&tangent_strides)[2], scalar_t* out, int64_t C, int64_t points,
                                     int64_t first, int64_t last) {
  const int64_t blocks = (points + kBilinearBlock - 1) / kBilinearBlock;
  const bool same_offsets = kInputTangent && kGridTangent && problem.input_stride[0] == problem.tangent_stride[0] &&
                            problem.input_stride[1] == problem.tangent_stride[1];
  // on the heap: larger than some threads' stacks
  const auto axes = std::make_unique<BilinearAxes<scalar_t>>();
  const auto taps = std::make_unique<BilinearTaps<scalar_t>>();
  for (int64_t item = first; item < last; ++item) {
    const int64_t n = item / blocks, start = (item % blocks) * kBilinearBlock;
    const int64_t length = std::min(kBilinearBlock, points - start);
    bilinear_axes(problem, grid, grid_t, n, start, length, *axes);
    bilinear_taps(*axes, length, *taps);
    for (int64_t c = 0; c < C; ++c) {
      const scalar_t* input_channel = input + n * input_strides[0] + c * input_strides[1];
      const scalar_t* tangent_channel =
          kInputTangent ? input_t + n * tangent_strides[0] + c * tangent_strides[1] : nullptr;
      scalar_t* out_channel = out + (n * C + c) * points + start;
      for (int64_t begin = 0; begin < length; begin += kChunk) {
        const int64_t end = std::min(length, begin + kChunk);
        if (same_offsets) {
          bilinear_channel<scalar_t, kInputTangent, kGridTangent, true>(*taps, begin, end, input_channel,
                                                                       tangent_channel, out_channel + begin);
        } else {
          bilinear_channel<scalar_t, kInputTangent, kGridTangent, false>(*taps, begin, end, input_channel,
                                                                        tangent_channel, out_channel + begin);
        }
      }
    }
  }
}

// bilinear_blocks' parameters and arguments, for the functions that choose its copy (passed
// one by one: a struct of them measured slower)
#define BILINEAR_BLOCKS_PARAMETERS                                                                                 \
  const Problem<scalar_t>&problem, const GridView<scalar_t>&grid, const GridView<scalar_t>&grid_t,                \
      const scalar_t *input, const int64_t(&input_strides)[2], const scalar_t *input_t,                           \
      const int64_t(&tangent_strides)[2], scalar_t *out, int64_t C, int64_t points, int64_t first, int64_t last
#define BILINEAR_BLOCKS_ARGUMENTS \
  problem, grid, grid_t, input, input_strides, input_t, tangent_strides, out, C, points, first, last

template <typename scalar_t, bool kInputTangent, bool kGridTangent>
void bilinear_blocks_baseline(BILINEAR_BLOCKS_PARAMETERS) {
  bilinear_blocks<scalar_t, kInputTangent, kGridTangent>(BILINEAR_BLOCKS_ARGUMENTS);
}

#if BILINEAR_AVX2
template <typename scalar_t, bool kInputTangent, bool kGridTangent>
__attribute__((target("avx2"))) void bilinear_blocks_avx2(BILINEAR_BLOCKS_PARAMETERS) {
  bilinear_blocks<scalar_t, kInputTangent, kGridTangent>(BILINEAR_BLOCKS_ARGUMENTS);
}

// Whether this CPU runs AVX2, unless ATEN_CPU_CAPABILITY=default (torch's own switch to its
// baseline kernels) asks for the baseline here too.
bool avx2_chosen() {
  static const bool chosen = [] {
    const char* capability = std::getenv("ATEN_CPU_CAPABILITY");
    return (capability == nullptr || std::strcmp(capability, "default") != 0) && __builtin_cpu_supports("avx2");
  }();
  return chosen;
}
#endif

template <typename scalar_t, bool kInputTangent, bool kGridTangent>
void bilinear_blocks_for_cpu(BILINEAR_BLOCKS_PARAMETERS) {
#if BILINEAR_AVX2
  if (avx2_chosen()) {
    bilinear_blocks_avx2<scalar_t, kInputTangent, kGridTangent>(BILINEAR_BLOCKS_ARGUMENTS);
    return;
  }
#endif
  bilinear_blocks_baseline<scalar_t, kInputTangent, kGridTangent>(BILINEAR_BLOCKS_ARGUMENTS);
}

template <typename scalar_t>
void bilinear_blocks(BILINEAR_BLOCKS_PARAMETERS) {
  if (input_t != nullptr && grid_t.data != nullptr) {
    bilinear_blocks_for_cpu<scalar_t, true, true>(BILINEAR_BLOCKS_ARGUMENTS);
  } else if (input_t != nullptr) {
    bilinear_blocks_for_cpu<scalar_t, true, false>(BILINEAR_BLOCKS_ARGUMENTS);
  } else {
    bilinear_blocks_for_cpu<scalar_t, false, true>(BILINEAR_BLOCKS_ARGUMENTS);
  }
}

#undef BILINEAR_BLOCKS_PARAMETERS
#undef BILINEAR_BLOCKS_ARGUMENTS

template <typename scalar_t>
void tangent_kernel(const at::Tensor& input, const at::Tensor& grid, const std::optional<at::Tensor>& input_t,
                    const std::optional<at::Tensor>& grid_t, const Problem<scalar_t>& problem, at::Tensor& out) {
  const int64_t N = input.size(0), C = input.size(1), dims = input.dim() - 2;
  const int64_t points = out.numel() / (N * C);
  const bool nearest = problem.mode == GridSamplerInterpolation::Nearest;
  const bool bicubic = problem.mode == GridSamplerInterpolation::Bicubic;
  const bool bilinear_2d = dims == 2 && !nearest && !bicubic;
  const int64_t block = bilinear_2d ? kBilinearBlock : kBlock;
  const int64_t blocks = (points + block - 1) / block;
  const GridView<scalar_t> grid_points = grid_view<scalar_t>(grid);
  // nearest: no grid term
  const GridView<scalar_t> grid_t_points = grid_t && !nearest ? grid_view<scalar_t>(*grid_t) : GridView<scalar_t>();
  const bool has_input_t = input_t.has_value();
  const scalar_t* input_data = input.const_data_ptr<scalar_t>();
  const scalar_t* input_t_data = has_input_t ? input_t->const_data_ptr<scalar_t>() : nullptr;
  const int64_t input_strides[2] = {input.stride(0), input.stride(1)};
  const int64_t tangent_strides[2] = {has_input_t ? input_t->stride(0) : 0, has_input_t ? input_t->stride(1) : 0};
  scalar_t* out_data = out.mutable_data_ptr<scalar_t>();
  const int64_t taps_per_point = nearest ? 1 : bicubic ? 16 : (dims == 2 ? 4 : 8);
  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, C * block * taps_per_point));

  at::parallel_for(0, N * blocks, grain, [&](int64_t first, int64_t last) {
    auto run = [&](auto dims, auto per_axis) {  // std::integral_constant: the variant's template arguments
      blocks_of_points<scalar_t, decltype(dims)::value, decltype(per_axis)::value>(
          problem, grid_points, grid_t_points, input_data, input_strides, input_t_data, tangent_strides, out_data, C,
          points, first, last);
    };
    using One = std::integral_constant<int, 1>;
    using Two = std::integral_constant<int, 2>;
    using Three = std::integral_constant<int, 3>;
    using Four = std::integral_constant<int, 4>;
    if (dims == 3) {
      if (nearest) {
        run(Three{}, One{});
      } else {
        run(Three{}, Two{});
      }
    } else if (nearest) {
      run(Two{}, One{});
    } else if (bicubic) {
      run(Two{}, Four{});
    } else {
      bilinear_blocks<scalar_t>(problem, grid_points, grid_t_points, input_data, input_strides, input_t_data,
                                tangent_strides, out_data, C, points, first, last);
    }
  });
}

at::Tensor grid_sample_tangent(const at::Tensor& input, const at::Tensor& grid, const std::optional<at::Tensor>& input_t,
                               const std::optional<at::Tensor>& grid_t, int64_t interpolation_mode,
                               int64_t padding_mode, bool align_corners) {
  const int64_t dims = input.dim() - 2;
  TORCH_CHECK(dims == 2 || dims == 3, "grid_sample_tangent: expected a 4-D or 5-D input, got ", input.dim(), "-D");
  TORCH_CHECK(grid.dim() == dims + 2 && grid.size(0) == input.size(0) && grid.size(-1) == dims,
              "grid_sample_tangent: the grid does not match the input");
  TORCH_CHECK(input_t || grid_t, "grid_sample_tangent: no tangent given");
  TORCH_CHECK(!input_t || (input_t->sizes() == input.sizes() && input_t->scalar_type() == input.scalar_type()),
              "grid_sample_tangent: input_t must have the input's sizes and dtype");
  TORCH_CHECK(!grid_t || (grid_t->sizes() == grid.sizes() && grid_t->scalar_type() == grid.scalar_type()),
              "grid_sample_tangent: grid_t must have the grid's sizes and dtype");
  TORCH_CHECK(grid.scalar_type() == input.scalar_type(), "grid_sample_tangent: input and grid dtypes differ");
  TORCH_CHECK(interpolation_mode >= 0 && interpolation_mode <= 2 && padding_mode >= 0 && padding_mode <= 2,
              "grid_sample_tangent: unknown interpolation or padding mode");
  const auto mode = static_cast<GridSamplerInterpolation>(interpolation_mode);
  TORCH_CHECK(mode != GridSamplerInterpolation::Bicubic || dims == 2, "grid_sample_tangent: bicubic is 2-D only");
  for (int64_t d = 2; d < input.dim(); ++d) {
    TORCH_CHECK(input.size(d) > 0, "grid_sample_tangent: empty spatial dimension");
  }
  std::vector<int64_t> out_sizes{input.size(0), input.size(1)};
  for (int64_t j = 1; j <= dims; ++j) {
    out_sizes.push_back(grid.size(j));
  }
  at::Tensor out = at::empty(out_sizes, input.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) {
    return out;
  }
  if (mode == GridSamplerInterpolation::Nearest && !input_t) {  // no grid term
    return out.zero_();
  }
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "grid_sample_tangent", [&] {
    Problem<scalar_t> problem;
    problem.mode = mode;
    problem.padding = static_cast<GridSamplerPadding>(padding_mode);
    problem.align_corners = align_corners;
    for (int d = 0; d < dims; ++d) {  // x is the last input dimension
      problem.size[d] = input.size(input.dim() - 1 - d);
      problem.input_stride[d] = input.stride(input.dim() - 1 - d);
      problem.tangent_stride[d] = input_t ? input_t->stride(input.dim() - 1 - d) : 0;
    }
    tangent_kernel<scalar_t>(input, grid, input_t, grid_t, problem, out);
  });
  return out;
}


}  // namespace

TORCH_LIBRARY_FRAGMENT(torch_fwdad, m) {
  m.def("grid_sample_tangent_parallel_threads() -> int");
  m.def(
      "grid_sample_tangent(Tensor input, Tensor grid, Tensor? input_t, Tensor? grid_t, int interpolation_mode, "
      "int padding_mode, bool align_corners) -> Tensor");
}

TORCH_LIBRARY_IMPL(torch_fwdad, CPU, m) {
  m.impl("grid_sample_tangent", &grid_sample_tangent);
}

TORCH_LIBRARY_IMPL(torch_fwdad, CompositeExplicitAutograd, m) {
  m.impl("grid_sample_tangent_parallel_threads", &torch_fwdad::parallel_region_threads);
}

static PyModuleDef module_definition = {PyModuleDef_HEAD_INIT, "_grid_sample_tangent",
                                        "torch.ops.torch_fwdad.grid_sample_tangent (values only, CPU)", -1, nullptr};

PyMODINIT_FUNC PyInit__grid_sample_tangent() {
  return torch_fwdad::create_extension_module(&module_definition);
}
