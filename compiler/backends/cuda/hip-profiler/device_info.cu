// device_info (ROCm): what a kernel measurement on this host holds for (the profile cache's key), as one JSON line,
// in the CUDA device_info's format (profiler/device_info.cu):
//   {"format":"ait-device","version":1,"device":{"gpu","sms","driver","cuda","cutlass"}}
// GPU 0 as HIP_VISIBLE_DEVICES shows it; sms its compute units, cuda the HIP runtime version, cutlass the Composable
// Kernel release the instances are written for (AIT_CK_RELEASE from the Makefile, as in ait_ck_profiler.cu).
#include <hip/hip_runtime.h>

#include <cstdio>

#ifndef AIT_CK_RELEASE
#define AIT_CK_RELEASE "unknown"
#endif

int main() {
  hipDeviceProp_t prop{};
  if (hipGetDeviceProperties(&prop, 0) != hipSuccess) {
    fprintf(stderr, "device_info: no HIP device\n");
    return 1;
  }
  int driver = 0, runtime = 0;
  (void)hipDriverGetVersion(&driver);
  (void)hipRuntimeGetVersion(&runtime);
  printf("{\"format\":\"ait-device\",\"version\":1,\"device\":{\"gpu\":\"");
  for (const char* p = prop.name; *p; ++p)
    if (*p == '"' || *p == '\\') printf("\\%c", *p);
    else if (static_cast<unsigned char>(*p) >= 0x20) putchar(*p);
  printf("\",\"sms\":%d,\"driver\":\"%d\",\"cuda\":\"%d.%d\",\"cutlass\":\"ck %s\"}}\n", prop.multiProcessorCount, driver,
         runtime / 10000000, (runtime / 100000) % 100, AIT_CK_RELEASE);
  return 0;
}
