#ifndef DPO_DIST_CDNNL_SHIM_H
#define DPO_DIST_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>
#include <dlfcn.h>

// DNNL_RUNTIME_DIM_VAL and DNNL_ARG_* are macros Swift imports only in part; the matmul needs these.
static inline int dpo_dnnl_arg_src(void) { return DNNL_ARG_SRC; }
static inline int dpo_dnnl_arg_weights(void) { return DNNL_ARG_WEIGHTS; }
static inline int dpo_dnnl_arg_dst(void) { return DNNL_ARG_DST; }
static inline int dpo_dnnl_arg_from(void) { return DNNL_ARG_FROM; }
static inline int dpo_dnnl_arg_to(void) { return DNNL_ARG_TO; }

// oneDNN's CPU runtime here is OpenMP (libgomp, loaded with libdnnl); its thread count is set through
// the OpenMP runtime, found at run time so that no OpenMP development package is needed to build.
static inline int dpo_omp_set_num_threads(int n) {
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!set) return 0;
    set(n);
    return 1;
}

// fp32 → bf16 with the CPU's own conversion (VCVTNE2PS2BF16: round to nearest even, NaN kept a
// quiet NaN, subnormal inputs flushed to zero, as oneDNN's reorders do on these CPUs), 32 values per
// instruction: a rows × cols matrix with leading dimension ld into a packed one. Only for CPUs with
// avx512_bf16 (the caller checks /proc/cpuinfo).
#include <immintrin.h>
#include <stdint.h>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline void dpo_round_to_bf16(const float *src, long rows, long cols, long ld, uint16_t *dst) {
    for (long r = 0; r < rows; r++) {
        const float *x = src + r * ld;
        uint16_t *y = dst + r * cols;
        long j = 0;
        for (; j + 32 <= cols; j += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + j + 16), _mm512_loadu_ps(x + j));
            _mm512_storeu_si512((void *)(y + j), (__m512i)v);
        }
        for (; j < cols; j += 16) {
            long n = cols - j < 16 ? cols - j : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + j));
            _mm256_mask_storeu_epi16((void *)(y + j), m, (__m256i)v);
        }
    }
}
#endif
