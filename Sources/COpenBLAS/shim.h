#ifndef DPO_DIST_COPENBLAS_SHIM_H
#define DPO_DIST_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
