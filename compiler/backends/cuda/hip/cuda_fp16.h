// HIP build: <cuda_fp16.h> of the shared sources (see ait_hip.h).
#pragma once
#include "ait_hip.h"
