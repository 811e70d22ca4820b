// Every AIT CUDA kernel template (generated sources include only what they use).
#pragma once

#include "attention.cuh"
#include "common.cuh"
#include "depthwise_conv.cuh"
#include "elementwise.cuh"
#include "grouped_conv.cuh"
#include "im2col.cuh"
#include "normalization.cuh"
#include "pad.cuh"
#include "pooling.cuh"
#include "reduce.cuh"
#include "resize.cuh"
#include "tensor_ops.cuh"
#include "topk.cuh"
