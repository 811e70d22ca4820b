{
  "targets": [
    {
      "target_name": "ait_native",
      "sources": ["binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "../compiler/backends/cuda/runtime", "."],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-ldl"]
    }
  ]
}
