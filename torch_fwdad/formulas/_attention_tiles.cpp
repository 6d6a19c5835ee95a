// The values-only tile loop of attention's tangent in C++ (formulas/attention_tiles.py loads it).
//
// torch_fwdad::attention_tangent_tiles computes, for attention with out O and logsumexp lse,
//     Ȯ = (P ⊙ ṡ) v + P v̇ − c·O,   c = l̇se = rowsum(P ⊙ ṡ),   ṡ = scale·(q̇ kᵀ + q k̇ᵀ) + ṁask,
// from P rebuilt tile by tile (P = exp(s − lse), no softmax statistics recomputed), never holding
// more than one tile of scores a thread. formulas/attention.py calls it only where nothing can
// differentiate the result (no autograd, no torch.func level above, no dispatch mode): it reads
// raw buffers and writes its outputs in place.
//
// Work items are (batch·head, block of query rows), taken by the threads of one parallel region
// from a shared counter: a thread that the system deschedules delays only the item it holds, and
// there is one barrier a call (the Python tile loop waited at one for every op). An item runs its
// matmuls on its own thread (one BLAS thread: SequentialBlas) into one buffer a thread and
// fuses what lies between them into one pass a row: exp2 with log₂e folded in, ṡ ⊙ P, and the
// row sum. Its output rows start as −c·O, and the products with v and v̇ add onto them.
#include "_extension_module.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <optional>
#include <tuple>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define TORCH_FWDAD_AVX2 1
#endif

// MKL's per-thread thread count, mkl_set_num_threads_local in C (PyTorch's builds with MKL
// export it; a weak reference is null where it is absent).
#if defined(__GNUC__) || defined(__clang__)
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));
#define TORCH_FWDAD_BLAS_THREADS_LOCAL MKL_Set_Num_Threads_Local
#else
#define TORCH_FWDAD_BLAS_THREADS_LOCAL nullptr
#endif

namespace {

using SetThreadsLocal = int (*)(int);
const SetThreadsLocal set_blas_threads_local = TORCH_FWDAD_BLAS_THREADS_LOCAL;

// One BLAS thread in this thread while it lives. ATen turns MKL's dynamic threading off, so
// MKL called inside a parallel region would start threads of its own in every thread (20x
// slower at 2 threads when measured).
class SequentialBlas {
 public:
  SequentialBlas() : previous_(set_blas_threads_local != nullptr ? set_blas_threads_local(1) : 0) {}
  ~SequentialBlas() {
    if (set_blas_threads_local != nullptr) {
      set_blas_threads_local(previous_);  // 0: back to the process-wide count
    }
  }
  SequentialBlas(const SequentialBlas&) = delete;
  SequentialBlas& operator=(const SequentialBlas&) = delete;

 private:
  int previous_;
};

constexpr double kLog2e = 1.4426950408889634;

// ------------------------------------------------------------------ one row's fused pass
//
// p[j] ← 2^(alpha·p[j] − shift) for j < n, and, when ds is given, ds[j] ← ds[j]·p[j];
// returns Σ ds[j] (0 without ds).

template <typename scalar_t>
double row_pass_scalar(scalar_t* p, scalar_t* ds, int64_t n, double alpha, double shift) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    const scalar_t value = std::exp2(static_cast<scalar_t>(alpha * p[j] - shift));
    p[j] = value;
    if (ds != nullptr) {
      ds[j] *= value;
      sum += ds[j];
    }
  }
  return sum;
}

#ifdef TORCH_FWDAD_AVX2
// 2^x for 8 floats: 2^round(x) from the exponent bits times 2^f (f = x − round(x) in
// [−½, ½]) from its Taylor polynomial of degree 7 (truncation error 5e-9, below float's
// rounding). x ≤ −127 gives 0 (−inf included), NaN stays NaN.
__attribute__((target("avx2,fma"))) inline __m256 exp2_avx2(__m256 x) {
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(128.0f));
  const __m256 n = _mm256_round_ps(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(clamped, n);
  __m256 poly = _mm256_set1_ps(1.5252733804059840e-5f);  // ln2^7 / 7!
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(1.5403530393381610e-4f));  // ln2^6 / 6!
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(1.3333558146428443e-3f));  // ln2^5 / 5!
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(9.6181291076284772e-3f));  // ln2^4 / 4!
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(5.5504108664821580e-2f));  // ln2^3 / 3!
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(2.4022650695910071e-1f));  // ln2^2 / 2!
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(6.9314718055994531e-1f));  // ln2
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(poly, _mm256_castsi256_ps(exponent));
  return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

__attribute__((target("avx2,fma"))) double row_pass_avx2(float* p, float* ds, int64_t n, double alpha,
                                                         double shift) {
  const __m256 alpha8 = _mm256_set1_ps(static_cast<float>(alpha));
  const __m256 shift8 = _mm256_set1_ps(static_cast<float>(shift));
  __m256 sum8 = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 value = exp2_avx2(_mm256_fmsub_ps(alpha8, _mm256_loadu_ps(p + j), shift8));
    _mm256_storeu_ps(p + j, value);
    if (ds != nullptr) {
      const __m256 product = _mm256_mul_ps(_mm256_loadu_ps(ds + j), value);
      _mm256_storeu_ps(ds + j, product);
      sum8 = _mm256_add_ps(sum8, product);
    }
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum8);
  double sum = 0;
  for (float lane : lanes) {
    sum += lane;
  }
  return sum + row_pass_scalar(p + j, ds == nullptr ? nullptr : ds + j, n - j, alpha, shift);
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

double row_pass(float* p, float* ds, int64_t n, double alpha, double shift) {
#ifdef TORCH_FWDAD_AVX2
  if (kHasAvx2) {
    return row_pass_avx2(p, ds, n, alpha, shift);
  }
#endif
  return row_pass_scalar(p, ds, n, alpha, shift);
}

double row_pass(double* p, double* ds, int64_t n, double alpha, double shift) {
  return row_pass_scalar(p, ds, n, alpha, shift);
}

// ------------------------------------------------------------------ the problem

// An optional (B, H, L, S) operand, broadcast dimensions with stride 0.
template <typename scalar_t>
struct Strided4d {
  const scalar_t* data = nullptr;
  int64_t stride[4] = {0, 0, 0, 0};

  explicit Strided4d(const std::optional<at::Tensor>& t) {
    if (t.has_value() && t->defined()) {
      data = t->const_data_ptr<scalar_t>();
      for (int d = 0; d < 4; ++d) {
        stride[d] = t->stride(d);
      }
    }
  }
  const scalar_t* row(int64_t b, int64_t h, int64_t i) const {
    return data + b * stride[0] + h * stride[1] + i * stride[2];
  }
};

struct Problem {
  int64_t B, H, L, S, E, Ev, rows;
  double scale;
  std::optional<int64_t> causal_offset;
  bool score_tangent, value_tangent;

  int64_t blocks() const { return (L + rows - 1) / rows; }
  // Keys that row i sees (all of them without causal masking).
  int64_t visible(int64_t i) const {
    return causal_offset ? std::clamp<int64_t>(i + *causal_offset + 1, 0, S) : S;
  }
};

// The operands' data, (B·H, ·, ·) contiguous blocks; nullptr for a tangent that is zero.
template <typename scalar_t>
struct Operands {
  const scalar_t *q, *k, *v, *out, *q_t, *k_t, *v_t, *lse;
  int64_t lse_stride[3];
  Strided4d<scalar_t> mask, mask_t;
  scalar_t *out_t, *row_sums;
};

// A (rows, cols) matrix over `data` with rows `ld` apart (transposed: columns `ld` apart),
// for ATen's matmuls: no dispatcher call to make it.
template <typename scalar_t>
at::Tensor matrix(const scalar_t* data, int64_t rows, int64_t cols, int64_t ld, bool transposed = false) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  return at::from_blob(const_cast<scalar_t*>(data), {rows, cols},
                       transposed ? at::IntArrayRef{1, ld} : at::IntArrayRef{ld, 1}, options);
}

// One thread's memory: the item's scores P and ṡ, and, with both q̇ and k̇, [q̇, q] for the
// item's rows and [k, k̇] for the head it last worked on, so that ṡ is one product of depth 2E.
template <typename scalar_t>
struct ThreadBuffers {
  at::Tensor scores, query_pairs, key_pairs;
  int64_t key_pairs_of = -1;  // the batch·head whose [k, k̇] key_pairs holds

  ThreadBuffers(const Problem& pr, const at::TensorOptions& options)
      : scores(at::empty({2 * std::min(pr.rows, pr.L) * pr.S}, options)) {}
};

// [a, b] along features for `rows` rows of E features each, into `pairs` (rows, 2E).
template <typename scalar_t>
void interleave(const scalar_t* a, const scalar_t* b, int64_t rows, int64_t E, scalar_t* pairs) {
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(a + r * E, a + (r + 1) * E, pairs + 2 * r * E);
    std::copy(b + r * E, b + (r + 1) * E, pairs + (2 * r + 1) * E);
  }
}

// ṡ / scale = q̇ kᵀ + q k̇ᵀ for the item's rows and its first `keys` keys, into ds (ld keys).
template <typename scalar_t>
void score_tangent(const Problem& pr, const Operands<scalar_t>& x, ThreadBuffers<scalar_t>& memory, int64_t bh,
                   int64_t first, int64_t rows, int64_t keys, at::Tensor& ds) {
  const int64_t E = pr.E, row_offset = (bh * pr.L + first) * E, key_offset = bh * pr.S * E;
  if (x.q_t != nullptr && x.k_t != nullptr) {  // [q̇, q]·[k, k̇]ᵀ
    if (!memory.query_pairs.defined()) {
      memory.query_pairs = at::empty({std::min(pr.rows, pr.L) * 2 * E}, memory.scores.options());
      memory.key_pairs = at::empty({pr.S * 2 * E}, memory.scores.options());
    }
    scalar_t* query_pairs = memory.query_pairs.template data_ptr<scalar_t>();
    scalar_t* key_pairs = memory.key_pairs.template data_ptr<scalar_t>();
    interleave(x.q_t + row_offset, x.q + row_offset, rows, E, query_pairs);
    if (memory.key_pairs_of != bh) {  // the first item of this head in this thread
      interleave(x.k + key_offset, x.k_t + key_offset, pr.S, E, key_pairs);
      memory.key_pairs_of = bh;
    }
    at::mm_out(ds, matrix(query_pairs, rows, 2 * E, 2 * E), matrix(key_pairs, 2 * E, keys, 2 * E, true));
  } else if (x.q_t != nullptr) {
    at::mm_out(ds, matrix(x.q_t + row_offset, rows, E, E), matrix(x.k + key_offset, E, keys, E, true));
  } else if (x.k_t != nullptr) {
    at::mm_out(ds, matrix(x.q + row_offset, rows, E, E), matrix(x.k_t + key_offset, E, keys, E, true));
  } else {
    ds.zero_();
  }
}

template <typename scalar_t>
void compute_item(const Problem& pr, const Operands<scalar_t>& x, ThreadBuffers<scalar_t>& memory, int64_t item) {
  const int64_t bh = item / pr.blocks(), first = (item % pr.blocks()) * pr.rows;
  const int64_t b = bh / pr.H, h = bh % pr.H;
  const int64_t rows = std::min(pr.rows, pr.L - first);
  const int64_t keys = pr.visible(first + rows - 1);  // keys some row of the block sees
  const int64_t E = pr.E, Ev = pr.Ev, row_offset = (bh * pr.L + first) * E, key_offset = bh * pr.S * E;
  const int64_t out_offset = (bh * pr.L + first) * Ev, value_offset = bh * pr.S * Ev;
  scalar_t* result = x.out_t + out_offset;
  scalar_t* sums = pr.score_tangent ? x.row_sums + bh * pr.L + first : nullptr;
  if (keys <= 0) {  // every key hidden: the output is constant
    std::fill(result, result + rows * Ev, scalar_t(0));
    if (sums != nullptr) {
      std::fill(sums, sums + rows, scalar_t(0));
    }
    return;
  }
  scalar_t* p_data = memory.scores.template data_ptr<scalar_t>();
  scalar_t* ds_data = pr.score_tangent ? p_data + rows * keys : nullptr;
  at::Tensor p = matrix(p_data, rows, keys, keys);
  at::mm_out(p, matrix(x.q + row_offset, rows, E, E), matrix(x.k + key_offset, E, keys, E, true));
  at::Tensor ds;
  if (pr.score_tangent) {  // ṡ / scale (scale is applied to c and with v)
    ds = matrix(ds_data, rows, keys, keys);
    score_tangent(pr, x, memory, bh, first, rows, keys, ds);
  }
  const double alpha = pr.scale * kLog2e;
  const scalar_t* lse_row = x.lse + b * x.lse_stride[0] + h * x.lse_stride[1];
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = first + r, seen = std::min(keys, pr.visible(i));
    scalar_t* p_row = p_data + r * keys;
    scalar_t* ds_row = ds_data == nullptr ? nullptr : ds_data + r * keys;
    double row_alpha = alpha;
    if (x.mask.data != nullptr) {  // s·log₂e = alpha·(q kᵀ) + log₂e·mask
      const scalar_t* m = x.mask.row(b, h, i);
      for (int64_t j = 0; j < seen; ++j) {
        p_row[j] = static_cast<scalar_t>(alpha * p_row[j] + kLog2e * m[j * x.mask.stride[3]]);
      }
      row_alpha = 1;
    }
    if (x.mask_t.data != nullptr) {
      const scalar_t* m = x.mask_t.row(b, h, i);
      for (int64_t j = 0; j < seen; ++j) {
        ds_row[j] += static_cast<scalar_t>(m[j * x.mask_t.stride[3]] / pr.scale);
      }
    }
    const double c = row_pass(p_row, ds_row, seen, row_alpha, kLog2e * lse_row[i * x.lse_stride[2]]);
    std::fill(p_row + seen, p_row + keys, scalar_t(0));  // hidden by the causal mask
    if (ds_row != nullptr) {
      std::fill(ds_row + seen, ds_row + keys, scalar_t(0));
      sums[r] = static_cast<scalar_t>(c * pr.scale);
    }
  }
  at::Tensor product = matrix(result, rows, Ev, Ev);
  if (pr.score_tangent) {  // −c·O, then + (P ⊙ ṡ) v
    const scalar_t* o = x.out + out_offset;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t e = 0; e < Ev; ++e) {
        result[r * Ev + e] = -sums[r] * o[r * Ev + e];
      }
    }
    at::addmm_out(product, product, ds, matrix(x.v + value_offset, keys, Ev, Ev), 1, pr.scale);
  }
  if (pr.value_tangent) {  // + P v̇
    at::Tensor value_t = matrix(x.v_t + value_offset, keys, Ev, Ev);
    if (pr.score_tangent) {
      at::addmm_out(product, product, p, value_t);
    } else {
      at::mm_out(product, p, value_t);
    }
  } else if (!pr.score_tangent) {
    std::fill(result, result + rows * Ev, scalar_t(0));
  }
}

// (Ȯ, l̇se) for tensors prepared by formulas/attention.py: query, key, value, out and the
// tangents contiguous (B, H, ·, ·) in one dtype (float or double), key/value heads repeated;
// lse (B, H, L) of the same dtype; mask and its tangent (B, H, L, S) views, broadcast with
// stride 0. l̇se is empty without a tangent of q, k or the mask.
std::tuple<at::Tensor, at::Tensor> attention_tangent_tiles(
    const at::Tensor& query, const at::Tensor& key, const at::Tensor& value, const at::Tensor& out,
    const at::Tensor& lse, const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& query_t,
    const std::optional<at::Tensor>& key_t, const std::optional<at::Tensor>& value_t,
    const std::optional<at::Tensor>& mask_t, double scale, std::optional<int64_t> causal_offset, int64_t tile_rows) {
  TORCH_CHECK(query.dim() == 4 && key.dim() == 4 && value.dim() == 4 && lse.dim() == 3,
              "attention_tangent_tiles: expected (B, H, L, E) query, key, value and (B, H, L) lse");
  TORCH_CHECK(query.scalar_type() == at::kFloat || query.scalar_type() == at::kDouble,
              "attention_tangent_tiles: float or double tensors only");
  TORCH_CHECK(tile_rows > 0 && scale != 0, "attention_tangent_tiles: tile_rows > 0 and scale != 0");
  auto check = [&](const at::Tensor& t, const char* name) {
    TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == query.scalar_type() && t.size(0) == query.size(0) &&
                    t.size(1) == query.size(1),
                "attention_tangent_tiles: ", name, " must be a CPU tensor of the query's dtype, batch and heads");
  };
  const at::Tensor* dense[] = {&query, &key, &value, &out};
  const char* dense_names[] = {"query", "key", "value", "out"};
  for (int i = 0; i < 4; ++i) {
    check(*dense[i], dense_names[i]);
    TORCH_CHECK(dense[i]->is_contiguous(), "attention_tangent_tiles: ", dense_names[i], " must be contiguous");
  }
  check(lse, "lse");
  Problem pr{query.size(0), query.size(1), query.size(2), key.size(2), query.size(3), value.size(3),
             tile_rows, scale, causal_offset, query_t || key_t || mask_t, value_t.has_value()};
  TORCH_CHECK(lse.size(2) == pr.L && key.size(3) == pr.E && value.size(2) == pr.S && out.size(2) == pr.L &&
                  out.size(3) == pr.Ev,
              "attention_tangent_tiles: mismatched shapes");
  for (const auto* t : {&query_t, &key_t, &value_t}) {
    if (t->has_value()) {
      check(**t, "a tangent");
      TORCH_CHECK((*t)->is_contiguous(), "attention_tangent_tiles: tangents must be contiguous");
    }
  }
  for (const auto* t : {&query_t, &key_t, &value_t}) {
    const at::Tensor& primal = t == &query_t ? query : t == &key_t ? key : value;
    TORCH_CHECK(!t->has_value() || (*t)->sizes() == primal.sizes(), "attention_tangent_tiles: tangent shape");
  }
  for (const auto* t : {&mask, &mask_t}) {
    if (t->has_value()) {
      check(**t, "mask");
      TORCH_CHECK((*t)->dim() == 4 && (*t)->size(2) == pr.L && (*t)->size(3) == pr.S,
                  "attention_tangent_tiles: masks must be (B, H, L, S) views");
    }
  }
  at::Tensor out_t = at::empty(out.sizes(), out.options());
  at::Tensor row_sums = at::empty(pr.score_tangent ? lse.sizes() : at::IntArrayRef{0}, out.options());
  const int64_t items = pr.B * pr.H * pr.blocks();
  if (items == 0) {
    return {out_t, row_sums};
  }
  std::atomic<int64_t> next{0};
  AT_DISPATCH_FLOATING_TYPES(query.scalar_type(), "attention_tangent_tiles", [&] {
    auto data = [](const std::optional<at::Tensor>& t) {
      return t.has_value() ? t->const_data_ptr<scalar_t>() : nullptr;
    };
    const Operands<scalar_t> operands{query.const_data_ptr<scalar_t>(), key.const_data_ptr<scalar_t>(),
                                      value.const_data_ptr<scalar_t>(), out.const_data_ptr<scalar_t>(),
                                      data(query_t), data(key_t), data(value_t), lse.const_data_ptr<scalar_t>(),
                                      {lse.stride(0), lse.stride(1), lse.stride(2)}, Strided4d<scalar_t>(mask),
                                      Strided4d<scalar_t>(mask_t), out_t.data_ptr<scalar_t>(),
                                      pr.score_tangent ? row_sums.data_ptr<scalar_t>() : nullptr};
    // one region; its threads take items from `next` (grain 1: one task a thread)
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
      const SequentialBlas sequential;
      ThreadBuffers<scalar_t> memory(pr, query.options());
      for (int64_t item = next++; item < items; item = next++) {
        compute_item<scalar_t>(pr, operands, memory, item);
      }
    });
  });
  return {out_t, row_sums};
}


}  // namespace

TORCH_LIBRARY_FRAGMENT(torch_fwdad, m) {
  m.def("attention_tiles_parallel_threads() -> int");
  m.def(
      "attention_tangent_tiles(Tensor query, Tensor key, Tensor value, Tensor out, Tensor lse, Tensor? mask, "
      "Tensor? query_t, Tensor? key_t, Tensor? value_t, Tensor? mask_t, float scale, int? causal_offset, "
      "int tile_rows) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(torch_fwdad, CPU, m) {
  m.impl("attention_tangent_tiles", &attention_tangent_tiles);
}

TORCH_LIBRARY_IMPL(torch_fwdad, CompositeExplicitAutograd, m) {
  m.impl("attention_tiles_parallel_threads", &torch_fwdad::parallel_region_threads);
}

static PyModuleDef module_definition = {PyModuleDef_HEAD_INIT, "_attention_tiles",
                                        "torch.ops.torch_fwdad.attention_tangent_tiles (values only, CPU)", -1,
                                        nullptr};

PyMODINIT_FUNC PyInit__attention_tiles() {
  return torch_fwdad::create_extension_module(&module_definition);
}
