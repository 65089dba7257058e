// lmkit: everything in one include.
#pragma once

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/extents.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/core/tensor.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/simd/transform.hpp"
#include "lmkit/io/arpa.hpp"
#include "lmkit/io/ngram_binary.hpp"
#include "lmkit/models/ngram/count_model.hpp"
#include "lmkit/models/ngram/kneser_ney.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"
