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
#endif
