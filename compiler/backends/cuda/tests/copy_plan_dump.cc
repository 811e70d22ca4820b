// Prints the plans of kernels/copy_plan.h for cases read from stdin, one per line, so test/backends/cuda/
// copy-plan.test.ts checks the real host-side plan (built with g++, no CUDA) against the per-element formulas.
//   copy <rank> <shape...> <strides...> <offset> <element_bytes> <aligned 0|1>
//     -> copy <rank> <total> <vector> <wide 0|1> <offset> <shape...> <strides...>
//   concat <n> <axis_sizes...> <outer> <inner> <output_axis> <output_axis_offset> <element_bytes> <aligned 0|1>
//     -> concat <n> <total> <vector> <wide 0|1> <row> <out_row> <out_offset> <outer> <sizes...>
//   roll <rank> <shape...> <shifts...> <element_bytes> <aligned 0|1>
//     -> roll <rank> <total> <vector> <wide 0|1> <shape...> <shifts...> <strides...>
// A plan refused (the launch's cudaErrorInvalidValue) prints "invalid".
#include <cstdio>
#include <iostream>
#include <string>

#include "copy_plan.h"

using namespace ait::kernels;

int main() {
  std::string kind;
  while (std::cin >> kind) {
    if (kind == "copy") {
      int rank, element_bytes, aligned;
      int64_t shape[kMaxPlanRank + 1] = {}, strides[kMaxPlanRank + 1] = {}, offset;
      std::cin >> rank;
      const int n = rank < 0 ? 0 : rank > kMaxPlanRank + 1 ? kMaxPlanRank + 1 : rank;
      for (int d = 0; d < n; ++d) std::cin >> shape[d];
      for (int d = 0; d < n; ++d) std::cin >> strides[d];
      std::cin >> offset >> element_bytes >> aligned;
      StridedCopyPlan p;
      if (!plan_strided_copy(rank, shape, strides, offset, element_bytes, aligned != 0, &p)) {
        std::printf("invalid\n");
        continue;
      }
      if (p.total == 0) p.rank = 0;
      std::printf("copy %d %lld %d %d %lld", p.rank, static_cast<long long>(p.total), p.vector, p.wide ? 1 : 0,
                  static_cast<long long>(p.offset));
      for (int d = 0; d < p.rank; ++d) std::printf(" %lld", static_cast<long long>(p.shape[d]));
      for (int d = 0; d < p.rank; ++d) std::printf(" %lld", static_cast<long long>(p.strides[d]));
      std::printf("\n");
    } else if (kind == "concat") {
      int n, element_bytes, aligned;
      int64_t sizes[kMaxPlanInputs + 1] = {}, outer, inner, output_axis, output_axis_offset;
      std::cin >> n;
      const int m = n < 0 ? 0 : n > kMaxPlanInputs + 1 ? kMaxPlanInputs + 1 : n;
      for (int k = 0; k < m; ++k) std::cin >> sizes[k];
      std::cin >> outer >> inner >> output_axis >> output_axis_offset >> element_bytes >> aligned;
      ConcatPlan p;
      if (!plan_concat(n, sizes, outer, inner, output_axis, output_axis_offset, element_bytes, aligned != 0, &p)) {
        std::printf("invalid\n");
        continue;
      }
      std::printf("concat %d %lld %d %d %lld %lld %lld %lld", p.num_inputs, static_cast<long long>(p.total), p.vector,
                  p.wide ? 1 : 0, static_cast<long long>(p.row), static_cast<long long>(p.out_row),
                  static_cast<long long>(p.out_offset), static_cast<long long>(p.outer));
      for (int k = 0; k < p.num_inputs; ++k) std::printf(" %lld", static_cast<long long>(p.sizes[k]));
      std::printf("\n");
    } else if (kind == "roll") {
      int rank, element_bytes, aligned;
      int64_t shape[kMaxPlanRank + 1] = {}, shifts[kMaxPlanRank + 1] = {};
      std::cin >> rank;
      const int n = rank < 0 ? 0 : rank > kMaxPlanRank + 1 ? kMaxPlanRank + 1 : rank;
      for (int d = 0; d < n; ++d) std::cin >> shape[d];
      for (int d = 0; d < n; ++d) std::cin >> shifts[d];
      std::cin >> element_bytes >> aligned;
      RollPlan p;
      if (!plan_roll(rank, shape, shifts, element_bytes, aligned != 0, &p)) {
        std::printf("invalid\n");
        continue;
      }
      if (p.total == 0) p.rank = 0;
      std::printf("roll %d %lld %d %d", p.rank, static_cast<long long>(p.total), p.vector, p.wide ? 1 : 0);
      for (int d = 0; d < p.rank; ++d) std::printf(" %lld", static_cast<long long>(p.shape[d]));
      for (int d = 0; d < p.rank; ++d) std::printf(" %lld", static_cast<long long>(p.shift[d]));
      for (int d = 0; d < p.rank; ++d) std::printf(" %lld", static_cast<long long>(p.stride[d]));
      std::printf("\n");
    } else {
      std::printf("unknown\n");
      return 1;
    }
  }
  return 0;
}
