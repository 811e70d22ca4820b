// Compile-only translation unit: instantiates every kernel template the code generator can emit, for fp16 storage
// (and fp32 where the generator uses it), so that CI (no GPU) proves they compile for sm_80 and sm_90:
//   nvcc -std=c++17 -O2 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -Icompiler/backends/cuda/kernels -c compiler/backends/cuda/tests/kernel_instances.cu -o /tmp/kernel_instances.o
#include "all.cuh"

namespace ait {
namespace kernels {
namespace ew_instances {
using ReluBias = ew::Chain<ew::Input<0>, ew::AddInput<1>, ew::Relu>;
using GeluBias = ew::Chain<ew::Input<0>, ew::AddInput<1>, ew::Gelu>;
using Residual = ew::Chain<ew::Input<0>, ew::AddInput<1>, ew::AddInput<2>>;
// depthwise conv epilogues: relu6(acc + bias) + residual, and the bare accumulator
using Relu6Bias = ew::Chain<ew::Input<0>, ew::AddInput<1>, ew::Clip, ew::AddInput<2>>;
using Identity = ew::Chain<ew::Input<0>>;
using SigmoidBias = ew::Chain<ew::Input<0>, ew::AddInput<1>, ew::Sigmoid>;
// mixed types: an attention mask (bool, Where over constants) added to fp16 scores; an int64 index chain
using MaskAdd = ew::Chain<ew::Input<0>, ew::Select<ew::Running, ew::Const<float>, ew::Const<float>>, ew::AddInput<1>>;
using NanGuard = ew::Chain<ew::Input<0>, ew::IsNaN, ew::Select<ew::Running, ew::Const<float>, ew::In<0>>>;
using IndexMath = ew::Chain<ew::Input<0>, ew::Binary<ew::op::Mul, ew::Running, ew::Const<int64_t>>, ew::Binary<ew::op::Add, ew::Running, ew::In<1>>,
                            ew::Binary<ew::op::Mod, ew::Running, ew::Const<int64_t>>>;
using Compare = ew::Chain<ew::Input<0>, ew::Binary<ew::op::GreaterOrEqual, ew::Running, ew::In<1>>, ew::Binary<ew::op::And, ew::Running, ew::In<2>>, ew::Not>;
using CastToInt = ew::Chain<ew::Input<0>, ew::Trunc>;
// DAG bodies: box decoding clipped to run-time bounds (fp16 kernel), RetinaNet's int64 floor division (mixed kernel)
using BoxDecode = ew::Dag<6, ew::Chain<ew::Input<0>, ew::MulInput<2>, ew::AddInput<3>>,
                          ew::Chain<ew::Input<1>, ew::Clip, ew::Exp, ew::MulInput<2>, ew::MulConst>,
                          ew::Binary<ew::op::Sub, ew::In<6>, ew::Running>,
                          ew::Binary<ew::op::Min, ew::Binary<ew::op::Max, ew::Running, ew::In<4>>, ew::In<5>>>;
using FloorDiv = ew::Dag<2, ew::Binary<ew::op::Div, ew::In<0>, ew::In<1>>, ew::Binary<ew::op::Less, ew::In<0>, ew::Const<int64_t>>,
                         ew::Binary<ew::op::Xor, ew::Running, ew::Const<int64_t>>, ew::Binary<ew::op::Mod, ew::In<0>, ew::In<1>>,
                         ew::Binary<ew::op::Equal, ew::Running, ew::Const<int64_t>>, ew::Not, ew::Binary<ew::op::And, ew::In<4>, ew::Running>,
                         ew::Binary<ew::op::Sub, ew::In<2>, ew::Const<int64_t>>, ew::Select<ew::In<8>, ew::Running, ew::In<2>>, ew::Sign>;
// a box decode over fp16 deltas and fp32 sizes/centres into fp32 (storage precision): the mixed kernel
using BoxDecodeMixed = ew::Chain<ew::Input<0>, ew::MulInput<1>, ew::AddInput<2>>;
// the remaining unary/binary functors (float), and Clip with integer constant bounds
using MoreUnary = ew::Chain<ew::Input<0>, ew::Log, ew::Sin, ew::Cos, ew::Softplus, ew::Elu, ew::Selu, ew::Sign, ew::Round,
                            ew::Binary<ew::op::PRelu, ew::Running, ew::In<1>>, ew::Binary<ew::op::Pow, ew::Running, ew::In<1>>>;
using IntClip = ew::Chain<ew::Input<0>, ew::Binary<ew::op::Min, ew::Binary<ew::op::Max, ew::Running, ew::Const<int64_t>>, ew::Const<int64_t>>>;
}  // namespace ew_instances

template cudaError_t launch_fused_elementwise<__half, 2, ew_instances::ReluBias>(const ew::ElementwiseArgs<__half, 2>&,
                                                                                 ew_instances::ReluBias, cudaStream_t);
template cudaError_t launch_fused_elementwise<__half, 2, ew_instances::GeluBias>(const ew::ElementwiseArgs<__half, 2>&,
                                                                                 ew_instances::GeluBias, cudaStream_t);
template cudaError_t launch_fused_elementwise<__half, 3, ew_instances::Residual>(const ew::ElementwiseArgs<__half, 3>&,
                                                                                 ew_instances::Residual, cudaStream_t);
template cudaError_t launch_fused_elementwise<float, 2, ew_instances::GeluBias>(const ew::ElementwiseArgs<float, 2>&,
                                                                                ew_instances::GeluBias, cudaStream_t);
template cudaError_t launch_mixed_elementwise<float, uint8_t, __half>(const ew::MixedArgs<__half, 2>&, ew_instances::MaskAdd, cudaStream_t);
template cudaError_t launch_mixed_elementwise<float, __half>(const ew::MixedArgs<__half, 1>&, ew_instances::NanGuard, cudaStream_t);
template cudaError_t launch_mixed_elementwise<int64_t, int64_t, int64_t>(const ew::MixedArgs<int64_t, 2>&, ew_instances::IndexMath, cudaStream_t);
template cudaError_t launch_mixed_elementwise<int64_t, int64_t, int32_t, uint8_t>(const ew::MixedArgs<uint8_t, 3>&, ew_instances::Compare,
                                                                                   cudaStream_t);
template cudaError_t launch_mixed_elementwise<float, __half>(const ew::MixedArgs<int64_t, 1>&, ew_instances::CastToInt, cudaStream_t);
template cudaError_t launch_fused_elementwise<__half, 6, ew_instances::BoxDecode>(const ew::ElementwiseArgs<__half, 6>&,
                                                                                  ew_instances::BoxDecode, cudaStream_t);
template cudaError_t launch_mixed_elementwise<int64_t, int64_t, int64_t>(const ew::MixedArgs<int64_t, 2>&, ew_instances::FloorDiv, cudaStream_t);
template cudaError_t launch_fused_elementwise<__half, 2, ew_instances::MoreUnary>(const ew::ElementwiseArgs<__half, 2>&,
                                                                                  ew_instances::MoreUnary, cudaStream_t);
template cudaError_t launch_mixed_elementwise<int64_t, int64_t>(const ew::MixedArgs<int64_t, 1>&, ew_instances::IntClip, cudaStream_t);
// a Concat read by a BatchNorm + ReLU (kConcat, three pieces): the fp16 kernel, and the mixed one (fp32 output)
template cudaError_t launch_fused_elementwise<__half, 3, ew_instances::ReluBias>(const ew::ElementwiseArgs<__half, 3, 3>&,
                                                                                 ew_instances::ReluBias, cudaStream_t);
template cudaError_t launch_mixed_elementwise<float, __half, __half>(const ew::MixedArgs<float, 2, 4>&, ew_instances::MaskAdd,
                                                                     cudaStream_t);
template cudaError_t launch_layernorm<__half>(const LayerNormArgs<__half>&, cudaStream_t);
template cudaError_t launch_softmax<__half>(const SoftmaxArgs<__half>&, cudaStream_t);
template cudaError_t launch_softmax<float>(const SoftmaxArgs<float>&, cudaStream_t);
template cudaError_t launch_axis_norm<__half>(const AxisNormArgs<__half>&, cudaStream_t);
template cudaError_t launch_group_norm<__half>(const GroupNormArgs<__half>&, cudaStream_t);
template cudaError_t launch_group_norm<__half>(const GroupNormArgs<__half>&, void*, size_t, cudaStream_t);  // + split path
template cudaError_t launch_arg_reduce<__half>(const ArgReduceArgs<__half>&, cudaStream_t);
template cudaError_t launch_arg_reduce<int64_t>(const ArgReduceArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_arg_reduce<int32_t>(const ArgReduceArgs<int32_t>&, cudaStream_t);
// attention at a few padded head dims (all nine would take minutes more per architecture): the ones ViT and Swin
// use, 48 (two row blocks), 80, 160 and 192 (tensor cores), 256 (CUDA cores only)
template cudaError_t launch_attention_padded<__half, 32>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 48>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 64>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 128>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 256>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 32, true>(const AttentionArgs<__half>&, cudaStream_t);  // masks
template cudaError_t launch_attention_padded<__half, 64, true>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 80, true>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 160, true>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_padded<__half, 192, true>(const AttentionArgs<__half>&, cudaStream_t);
// values of their own head dim at their own padded pair (CUDA cores): LeViT (16, 64), EfficientFormer (32, 128) with
// its bias, Dv < D (64, 32), and fp32 storage (scalar and 4-element vectors)
template cudaError_t launch_attention_dims<__half, 16, 64>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_dims<__half, 32, 128, true>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_dims<__half, 64, 32>(const AttentionArgs<__half>&, cudaStream_t);
template cudaError_t launch_attention_dims<float, 8, 48>(const AttentionArgs<float>&, cudaStream_t);
template cudaError_t launch_pool2d_nhwc<__half>(const Pool2dArgs<__half>&, cudaStream_t);
template cudaError_t launch_global_pool_nhwc<__half>(const GlobalPoolArgs<__half>&, void*, size_t, cudaStream_t);
template cudaError_t launch_global_pool_nhwc<float>(const GlobalPoolArgs<float>&, void*, size_t, cudaStream_t);
template cudaError_t launch_reduce<__half>(const ReduceArgs<__half>&, cudaStream_t);
template cudaError_t launch_reduce_strided<__half>(const ReduceStridedArgs<__half>&, cudaStream_t);
// integer and bool data: int64 accumulators
template cudaError_t launch_reduce<int64_t>(const ReduceArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_reduce_strided<int64_t>(const ReduceStridedArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_reduce<int32_t>(const ReduceArgs<int32_t>&, cudaStream_t);
template cudaError_t launch_reduce_strided<int32_t>(const ReduceStridedArgs<int32_t>&, cudaStream_t);
template cudaError_t launch_reduce<uint8_t>(const ReduceArgs<uint8_t>&, cudaStream_t);
template cudaError_t launch_reduce_strided<uint8_t>(const ReduceStridedArgs<uint8_t>&, cudaStream_t);
template cudaError_t launch_pad<__half>(const PadArgs<__half>&, cudaStream_t);
template cudaError_t launch_pad<int64_t>(const PadArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_concat<__half>(const ConcatArgs<__half>&, cudaStream_t);
template cudaError_t launch_strided_copy<__half>(const StridedCopyArgs<__half>&, cudaStream_t);
template cudaError_t launch_strided_copy<int64_t>(const StridedCopyArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_strided_copy<uint8_t>(const StridedCopyArgs<uint8_t>&, cudaStream_t);
template cudaError_t launch_roll<__half>(const RollArgs<__half>&, cudaStream_t);
template cudaError_t launch_roll<float>(const RollArgs<float>&, cudaStream_t);
template cudaError_t launch_roll<int64_t>(const RollArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_roll<uint8_t>(const RollArgs<uint8_t>&, cudaStream_t);
template cudaError_t launch_col2im<__half>(const Col2ImArgs<__half>&, cudaStream_t);
template cudaError_t launch_lstm<__half>(const LstmArgs<__half>&, cudaStream_t);
template cudaError_t launch_lstm<float>(const LstmArgs<float>&, cudaStream_t);
template cudaError_t launch_gru<__half>(const GruArgs<__half>&, cudaStream_t);
template cudaError_t launch_gru<float>(const GruArgs<float>&, cudaStream_t);
template cudaError_t launch_col2im<float>(const Col2ImArgs<float>&, cudaStream_t);
template cudaError_t launch_col2im<__nv_bfloat16>(const Col2ImArgs<__nv_bfloat16>&, cudaStream_t);
template cudaError_t launch_concat<int64_t>(const ConcatArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_gather<__half, int64_t>(const GatherArgs<__half, int64_t>&, cudaStream_t);
template cudaError_t launch_gather<uint8_t, int32_t>(const GatherArgs<uint8_t, int32_t>&, cudaStream_t);
template cudaError_t launch_gather_elements<__half, int64_t>(const GatherElementsArgs<__half, int64_t>&, cudaStream_t);
template cudaError_t launch_gather_nd<int64_t, int64_t>(const GatherNDArgs<int64_t, int64_t>&, cudaStream_t);
template cudaError_t launch_range<int64_t, int64_t>(const RangeArgs<int64_t, int64_t>&, cudaStream_t);
template cudaError_t launch_range<__half, float>(const RangeArgs<__half, float>&, cudaStream_t);
template cudaError_t launch_resize<__half>(const ResizeArgs<__half>&, cudaStream_t);
template cudaError_t launch_depthwise_conv2d_nhwc<__half, 2, ew_instances::Relu6Bias>(const DepthwiseConv2dArgs<__half, 2>&,
                                                                                     ew_instances::Relu6Bias, cudaStream_t);
template cudaError_t launch_depthwise_conv2d_nhwc<__half, 0, ew_instances::Identity>(const DepthwiseConv2dArgs<__half, 0>&,
                                                                                    ew_instances::Identity, cudaStream_t);
template cudaError_t launch_grouped_conv2d_nhwc<__half, 2, ew_instances::Relu6Bias>(const GroupedConv2dArgs<__half, 2>&,
                                                                                   ew_instances::Relu6Bias, cudaStream_t, GroupedConvPath);
template cudaError_t launch_grouped_conv2d_nhwc<__half, 0, ew_instances::Identity>(const GroupedConv2dArgs<__half, 0>&,
                                                                                  ew_instances::Identity, cudaStream_t, GroupedConvPath);
template cudaError_t launch_conv_transpose2d_col2im_nhwc<__half, 2, ew_instances::Relu6Bias>(const ConvTransposeCol2imArgs<__half, 2>&,
                                                                                            ew_instances::Relu6Bias, cudaStream_t);
template cudaError_t launch_conv_transpose2d_col2im_nhwc<__half, 0, ew_instances::Identity>(const ConvTransposeCol2imArgs<__half, 0>&,
                                                                                           ew_instances::Identity, cudaStream_t);
template cudaError_t launch_conv_transpose2d_direct_nhwc<__half, 2, ew_instances::Relu6Bias>(const ConvTransposeDirectArgs<__half, 2>&,
                                                                                            ew_instances::Relu6Bias, cudaStream_t);
template cudaError_t launch_conv_transpose2d_direct_nhwc<__half, 0, ew_instances::Identity>(const ConvTransposeDirectArgs<__half, 0>&,
                                                                                           ew_instances::Identity, cudaStream_t);
// 3-D (NDHWC) convolutions use the same templates with the args' depth fields set: X3D's depthwise 3x3x3 + bias +
// sigmoid, a grouped 3x3x3 + bias + residual (the epilogues the video op models emit); im2col and pooling above
template cudaError_t launch_depthwise_conv2d_nhwc<__half, 1, ew_instances::SigmoidBias>(const DepthwiseConv2dArgs<__half, 1>&,
                                                                                       ew_instances::SigmoidBias, cudaStream_t);
template cudaError_t launch_grouped_conv2d_nhwc<__half, 2, ew_instances::Residual>(const GroupedConv2dArgs<__half, 2>&,
                                                                                  ew_instances::Residual, cudaStream_t, GroupedConvPath);
template cudaError_t launch_im2col_nhwc<__half>(const Im2colArgs<__half>&, cudaStream_t);
template cudaError_t launch_pad_rows<__half>(const __half*, __half*, int64_t, int32_t, int32_t, cudaStream_t);
template cudaError_t launch_nonzero_count<__half>(const NonZeroArgs<__half>&, cudaStream_t);
template cudaError_t launch_nonzero_write<__half>(const NonZeroArgs<__half>&, int64_t, cudaStream_t);
template cudaError_t launch_nonzero_count<uint8_t>(const NonZeroArgs<uint8_t>&, cudaStream_t);
template cudaError_t launch_nonzero_write<uint8_t>(const NonZeroArgs<uint8_t>&, int64_t, cudaStream_t);
template cudaError_t launch_nonzero_write<int64_t>(const NonZeroArgs<int64_t>&, int64_t, cudaStream_t);
template cudaError_t launch_nms_select<__half>(const NmsArgs<__half>&, cudaStream_t);
template cudaError_t launch_nms_write<__half>(const NmsArgs<__half>&, int64_t, cudaStream_t);
template cudaError_t launch_nms_select<float>(const NmsArgs<float>&, cudaStream_t);
template cudaError_t launch_nms_write<float>(const NmsArgs<float>&, int64_t, cudaStream_t);
template cudaError_t launch_roi_align<__half, __half>(const RoiAlignArgs<__half>&, cudaStream_t);
// fp32 storage (passes/storage-precision.ts): rois, and the copies/reductions/elementwise of box chains
template cudaError_t launch_roi_align<__half, float>(const RoiAlignArgs<__half, float>&, cudaStream_t);
// PasteMasks (torchvision's mask paste): fp16 or fp32 masks, int64 (exported) or int32 boxes
template cudaError_t launch_paste_masks<__half, int64_t>(const PasteMasksArgs<__half, int64_t>&, cudaStream_t);
template cudaError_t launch_paste_masks<float, int64_t>(const PasteMasksArgs<float, int64_t>&, cudaStream_t);
template cudaError_t launch_paste_masks<__half, int32_t>(const PasteMasksArgs<__half, int32_t>&, cudaStream_t);
template cudaError_t launch_paste_masks<float, int32_t>(const PasteMasksArgs<float, int32_t>&, cudaStream_t);
template cudaError_t launch_concat<float>(const ConcatArgs<float>&, cudaStream_t);
template cudaError_t launch_strided_copy<float>(const StridedCopyArgs<float>&, cudaStream_t);
template cudaError_t launch_gather<float, int64_t>(const GatherArgs<float, int64_t>&, cudaStream_t);
template cudaError_t launch_gather_elements<float, int64_t>(const GatherElementsArgs<float, int64_t>&, cudaStream_t);
template cudaError_t launch_gather_nd<float, int64_t>(const GatherNDArgs<float, int64_t>&, cudaStream_t);
template cudaError_t launch_reduce<float>(const ReduceArgs<float>&, cudaStream_t);
template cudaError_t launch_reduce_strided<float>(const ReduceStridedArgs<float>&, cudaStream_t);
template cudaError_t launch_range<float, float>(const RangeArgs<float, float>&, cudaStream_t);
template cudaError_t launch_fill<float>(const FillArgs<float>&, cudaStream_t);
template cudaError_t launch_mixed_elementwise<float, __half, float, float>(const ew::MixedArgs<float, 3>&, ew_instances::BoxDecodeMixed,
                                                                           cudaStream_t);
template cudaError_t launch_mixed_elementwise<float, __half>(const ew::MixedArgs<float, 1>&, ew_instances::Identity, cudaStream_t);
template cudaError_t launch_scatter_elements<__half, int64_t>(const ScatterElementsArgs<__half, int64_t>&, cudaStream_t);
template cudaError_t launch_scatter_elements<__half, int32_t>(const ScatterElementsArgs<__half, int32_t>&, cudaStream_t);
template cudaError_t launch_scatter_elements<int64_t, int64_t>(const ScatterElementsArgs<int64_t, int64_t>&, cudaStream_t);
template cudaError_t launch_scatter_elements<int32_t, int64_t>(const ScatterElementsArgs<int32_t, int64_t>&, cudaStream_t);
template cudaError_t launch_scatter_elements<uint8_t, int64_t>(const ScatterElementsArgs<uint8_t, int64_t>&, cudaStream_t);
template cudaError_t launch_scatter_nd<__half, int64_t>(const ScatterNDArgs<__half, int64_t>&, void*, size_t, cudaStream_t);
template cudaError_t launch_scatter_nd<int64_t, int64_t>(const ScatterNDArgs<int64_t, int64_t>&, void*, size_t, cudaStream_t);
template cudaError_t launch_scatter_nd<int32_t, int64_t>(const ScatterNDArgs<int32_t, int64_t>&, void*, size_t, cudaStream_t);
template cudaError_t launch_scatter_nd<uint8_t, int64_t>(const ScatterNDArgs<uint8_t, int64_t>&, void*, size_t, cudaStream_t);
template cudaError_t launch_fill<__half>(const FillArgs<__half>&, cudaStream_t);
template cudaError_t launch_fill<int64_t>(const FillArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_fill<int32_t>(const FillArgs<int32_t>&, cudaStream_t);
template cudaError_t launch_fill<uint8_t>(const FillArgs<uint8_t>&, cudaStream_t);
template cudaError_t launch_cumsum<__half>(const CumSumArgs<__half>&, cudaStream_t);
template cudaError_t launch_cumsum<int64_t>(const CumSumArgs<int64_t>&, cudaStream_t);
template cudaError_t launch_cumsum<int32_t>(const CumSumArgs<int32_t>&, cudaStream_t);
template cudaError_t launch_lrn<__half>(const LrnArgs<__half>&, cudaStream_t);
// TopK: every storage type a model can give it (fp16, fp32 where storage precision keeps it; bf16 for completeness)
template cudaError_t launch_topk<__half>(const TopKArgs<__half>&, void*, size_t, cudaStream_t);
template cudaError_t launch_topk<__nv_bfloat16>(const TopKArgs<__nv_bfloat16>&, void*, size_t, cudaStream_t);
template cudaError_t launch_topk<float>(const TopKArgs<float>&, void*, size_t, cudaStream_t);
template cudaError_t launch_topk<int32_t>(const TopKArgs<int32_t>&, void*, size_t, cudaStream_t);
template cudaError_t launch_topk<int64_t>(const TopKArgs<int64_t>&, void*, size_t, cudaStream_t);
}  // namespace kernels
}  // namespace ait
