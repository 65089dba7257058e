// Every per-target kernel, gathered so that one foreach_target pass compiles them all (Highway
// 1.0.3's foreach_target.h has an include guard: a translation unit gets one pass). Included only
// by kernels.hpp.
#if defined(LMKIT_KERNELS_ALL_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_ALL_INL_HPP_
#undef LMKIT_KERNELS_ALL_INL_HPP_
#else
#define LMKIT_KERNELS_ALL_INL_HPP_
#endif

#include <hwy/highway.h>

#include "lmkit/kernels/activation-inl.hpp"
#include "lmkit/kernels/attention-inl.hpp"
#include "lmkit/kernels/convert-inl.hpp"
#include "lmkit/kernels/elementwise-inl.hpp"
#include "lmkit/kernels/gemm_nt-inl.hpp"
#include "lmkit/kernels/gemm_tn-inl.hpp"
#include "lmkit/kernels/matmul-inl.hpp"
#include "lmkit/kernels/norm-inl.hpp"
#include "lmkit/kernels/optimizer-inl.hpp"
#include "lmkit/kernels/prepacked-inl.hpp"
#include "lmkit/kernels/quant-inl.hpp"
#include "lmkit/kernels/recurrent-inl.hpp"
#include "lmkit/kernels/rope-inl.hpp"
#include "lmkit/kernels/softmax-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
// The name of the target this copy of the kernels was compiled for: tests assert that the target
// they asked for is the one that ran.
inline const char* target_name() { return hwy::TargetName(HWY_TARGET); }
}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
