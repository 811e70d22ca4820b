// Every AIT CUDA kernel template (generated sources include only what they use).
#pragma once

#include "attention.cuh"
#include "common.cuh"
#include "depthwise_conv.cuh"
#include "elementwise.cuh"
#include "fill.cuh"
#include "grouped_conv.cuh"
#include "im2col.cuh"
#include "nonzero.cuh"
#include "normalization.cuh"
#include "pad.cuh"
#include "pooling.cuh"
#include "reduce.cuh"
#include "resize.cuh"
#include "roi_align.cuh"
#include "scatter.cuh"
#include "tensor_ops.cuh"
