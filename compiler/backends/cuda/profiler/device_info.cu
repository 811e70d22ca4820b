// device_info: what a kernel measurement on this host holds for (the profile cache's key), as one JSON line:
//   {"format":"ait-device","version":1,"device":{"gpu","sms","driver","cuda","cutlass"}}
// GPU 0 as CUDA_VISIBLE_DEVICES shows it; driver and cuda are the driver's and the runtime's CUDA versions; cutlass
// the version of the headers this was built with (the same CUTLASS_DIR as the profiler's and the model's builds).
#include <cuda_runtime.h>

#include <cstdio>

#include "cutlass/version.h"

int main() {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    fprintf(stderr, "device_info: no CUDA device\n");
    return 1;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  printf("{\"format\":\"ait-device\",\"version\":1,\"device\":{\"gpu\":\"");
  for (const char* p = prop.name; *p; ++p)
    if (*p == '"' || *p == '\\') printf("\\%c", *p);
    else if (static_cast<unsigned char>(*p) >= 0x20) putchar(*p);
  printf("\",\"sms\":%d,\"driver\":\"%d.%d\",\"cuda\":\"%d.%d\",\"cutlass\":\"%d.%d.%d\"}}\n", prop.multiProcessorCount, driver / 1000,
         (driver % 1000) / 10, runtime / 1000, (runtime % 1000) / 10, CUTLASS_MAJOR, CUTLASS_MINOR, CUTLASS_PATCH);
  return 0;
}
