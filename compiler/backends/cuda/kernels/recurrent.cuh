// LSTM and GRU (ONNX; ops/recurrent.ts has the equations). LSTM: one launch per time step for all directions, one thread per
// (direction, batch entry, hidden unit) computing that unit's four gates (i, o, f, c) in fp32 from X_t·Wᵀ and
// H_{t-1}·Rᵀ, then its cell and hidden state. The hidden state ping-pongs between two fp32 buffers of the workspace
// (every thread of step s reads all of H_{s-1}, so step s writes the other buffer); each thread owns its cell. Step 0
// reads initial_h / initial_c (or zeros); the last step writes Y_h / Y_c. Default activations (σ, tanh, tanh) only.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct LstmArgs {
  const T* x;         // [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1)
  const T* w;         // [dirs, 4·hidden, input], gates i, o, f, c
  const T* r;         // [dirs, 4·hidden, hidden]
  const T* bias;      // [dirs, 8·hidden] (Wb then Rb) or nullptr
  const T* peephole;  // [dirs, 3·hidden] (i, o, f) or nullptr
  const T* initial_h;  // state layout (below) or nullptr: zeros
  const T* initial_c;
  T* y;    // [seq, dirs, batch, hidden] (layout 0) or [batch, seq, dirs, hidden], or nullptr
  T* y_h;  // [dirs, batch, hidden] (layout 0) or [batch, dirs, hidden], or nullptr
  T* y_c;
  float* state;  // workspace: 3 · dirs · batch · hidden floats (two hidden buffers, one cell buffer)
  int64_t seq, batch;
  int32_t input, hidden, dirs;
  int32_t reverse;  // 1: a single direction, run backwards
  int32_t layout;
  int32_t input_forget;
  float clip;  // 0: none
};

__device__ __forceinline__ float lstm_sigmoid(float v) { return 1.f / (1.f + __expf(-v)); }

// This thread's hidden unit j of batch entry n in direction d (threads over [dirs, batch, hidden]); false past the end.
// state: its index in the state tensors' layout, [dirs, batch, hidden] (layout 0) or [batch, dirs, hidden].
struct RecurrentUnit {
  int j;
  int64_t n;
  int d;
  int64_t state;
};
__device__ __forceinline__ bool recurrent_unit(int dirs, int64_t batch, int hidden, int layout, RecurrentUnit* u) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(dirs) * batch * hidden) return false;
  u->j = static_cast<int>(i % hidden);
  u->n = (i / hidden) % batch;
  u->d = static_cast<int>(i / (static_cast<int64_t>(hidden) * batch));
  u->state = (layout == 0 ? static_cast<int64_t>(u->d) * batch + u->n : u->n * dirs + u->d) * hidden + u->j;
  return true;
}

template <class T>
__global__ void lstm_step_kernel(LstmArgs<T> a, int64_t step) {
  RecurrentUnit u;
  if (!recurrent_unit(a.dirs, a.batch, a.hidden, a.layout, &u)) return;
  const int j = u.j, d = u.d;
  const int64_t n = u.n, io_state = u.state;
  const bool backwards = a.reverse || d == 1;
  const int64_t t = backwards ? a.seq - 1 - step : step;
  const int64_t plane = static_cast<int64_t>(a.dirs) * a.batch * a.hidden;  // one state buffer
  const int64_t unit = (static_cast<int64_t>(d) * a.batch + n) * a.hidden;  // this (d, n)'s row in a buffer
  const float* h_prev = a.state + (step % 2) * plane + unit;
  float* h_next = a.state + ((step + 1) % 2) * plane + unit;
  float* cell = a.state + 2 * plane + unit + j;
  float c_prev;
  if (step == 0) {
    c_prev = a.initial_c ? to_float(a.initial_c[io_state]) : 0.f;
    // step 0 reads initial_h through h_prev: the host zeroed or filled buffer 0 (lstm_init_kernel)
  } else {
    c_prev = *cell;
  }
  const T* x_row = a.x + (a.layout == 0 ? t * a.batch + n : n * a.seq + t) * a.input;
  float gates[4];
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    const int64_t row = static_cast<int64_t>(d) * 4 * a.hidden + g * a.hidden + j;
    float acc = a.bias ? to_float(a.bias[static_cast<int64_t>(d) * 8 * a.hidden + g * a.hidden + j]) +
                             to_float(a.bias[static_cast<int64_t>(d) * 8 * a.hidden + 4 * a.hidden + g * a.hidden + j])
                       : 0.f;
    const T* w_row = a.w + row * a.input;
    for (int k = 0; k < a.input; ++k) acc += to_float(x_row[k]) * to_float(w_row[k]);
    const T* r_row = a.r + row * a.hidden;
    for (int k = 0; k < a.hidden; ++k) acc += h_prev[k] * to_float(r_row[k]);
    gates[g] = acc;
  }
  const auto clipped = [&](float v) { return a.clip > 0.f ? fminf(a.clip, fmaxf(-a.clip, v)) : v; };
  const float peep_i = a.peephole ? to_float(a.peephole[static_cast<int64_t>(d) * 3 * a.hidden + j]) : 0.f;
  const float peep_o = a.peephole ? to_float(a.peephole[static_cast<int64_t>(d) * 3 * a.hidden + a.hidden + j]) : 0.f;
  const float peep_f = a.peephole ? to_float(a.peephole[static_cast<int64_t>(d) * 3 * a.hidden + 2 * a.hidden + j]) : 0.f;
  const float in_gate = lstm_sigmoid(clipped(gates[0] + peep_i * c_prev));
  const float forget = a.input_forget ? 1.f - in_gate : lstm_sigmoid(clipped(gates[2] + peep_f * c_prev));
  const float candidate = tanhf(clipped(gates[3]));
  const float c = forget * c_prev + in_gate * candidate;
  const float out_gate = lstm_sigmoid(clipped(gates[1] + peep_o * c));
  const float h = out_gate * tanhf(c);
  *cell = c;
  h_next[j] = h;
  if (a.y) {
    const int64_t at = a.layout == 0 ? ((t * a.dirs + d) * a.batch + n) * a.hidden + j : ((n * a.seq + t) * a.dirs + d) * a.hidden + j;
    a.y[at] = from_float<T>(h);
  }
  if (step == a.seq - 1) {
    if (a.y_h) a.y_h[io_state] = from_float<T>(h);
    if (a.y_c) a.y_c[io_state] = from_float<T>(c);
  }
}

// Hidden buffer 0 := initial_h (or zeros), in the workspace's [dirs, batch, hidden] order.
template <class T>
__global__ void lstm_init_kernel(LstmArgs<T> a) {
  RecurrentUnit u;
  if (!recurrent_unit(a.dirs, a.batch, a.hidden, a.layout, &u)) return;
  // the workspace's order is [dirs, batch, hidden]
  a.state[(static_cast<int64_t>(u.d) * a.batch + u.n) * a.hidden + u.j] = a.initial_h ? to_float(a.initial_h[u.state]) : 0.f;
}

template <class T>
cudaError_t launch_lstm(const LstmArgs<T>& a, cudaStream_t stream) {
  if (a.hidden < 1 || a.input < 1 || a.dirs < 1 || a.dirs > 2 || a.batch < 0 || a.seq < 0) return cudaErrorInvalidValue;
  const int64_t units = static_cast<int64_t>(a.dirs) * a.batch * a.hidden;
  if (units == 0) return cudaSuccess;
  constexpr int kThreads = 128;
  const unsigned blocks = static_cast<unsigned>((units + kThreads - 1) / kThreads);
  lstm_init_kernel<T><<<blocks, kThreads, 0, stream>>>(a);
  if (a.seq == 0) return launch_status();
  for (int64_t step = 0; step < a.seq; ++step) lstm_step_kernel<T><<<blocks, kThreads, 0, stream>>>(a, step);
  return launch_status();
}

// GRU with linear_before_reset = 1 (PyTorch's form: each unit's candidate needs only its own row of Ht-1·Rhᵀ, so a
// thread per unit suffices; with 0 the reset gate of every unit enters every candidate). The same launch per step and
// ping-ponged fp32 hidden state as the LSTM; no cell.
template <class T>
struct GruArgs {
  const T* x;          // as LstmArgs
  const T* w;          // [dirs, 3·hidden, input], gates z, r, h
  const T* r;          // [dirs, 3·hidden, hidden]
  const T* bias;       // [dirs, 6·hidden] (Wb then Rb) or nullptr
  const T* initial_h;  // or nullptr: zeros
  T* y;
  T* y_h;
  float* state;  // workspace: 2 · dirs · batch · hidden floats
  int64_t seq, batch;
  int32_t input, hidden, dirs;
  int32_t reverse;
  int32_t layout;
  float clip;
};

template <class T>
__global__ void gru_step_kernel(GruArgs<T> a, int64_t step) {
  RecurrentUnit u;
  if (!recurrent_unit(a.dirs, a.batch, a.hidden, a.layout, &u)) return;
  const int j = u.j, d = u.d;
  const int64_t n = u.n;
  const int64_t t = a.reverse || d == 1 ? a.seq - 1 - step : step;
  const int64_t plane = static_cast<int64_t>(a.dirs) * a.batch * a.hidden;
  const int64_t unit = (static_cast<int64_t>(d) * a.batch + n) * a.hidden;
  const float* h_prev = a.state + (step % 2) * plane + unit;
  const T* x_row = a.x + (a.layout == 0 ? t * a.batch + n : n * a.seq + t) * a.input;
  float xw[3], hr[3];
#pragma unroll
  for (int g = 0; g < 3; ++g) {
    const int64_t row = static_cast<int64_t>(d) * 3 * a.hidden + g * a.hidden + j;
    const int64_t b = static_cast<int64_t>(d) * 6 * a.hidden + g * a.hidden + j;
    float acc = a.bias ? to_float(a.bias[b]) : 0.f;
    for (int k = 0; k < a.input; ++k) acc += to_float(x_row[k]) * to_float(a.w[row * a.input + k]);
    xw[g] = acc;
    float rec = a.bias ? to_float(a.bias[b + 3 * a.hidden]) : 0.f;
    for (int k = 0; k < a.hidden; ++k) rec += h_prev[k] * to_float(a.r[row * a.hidden + k]);
    hr[g] = rec;
  }
  const auto clipped = [&](float v) { return a.clip > 0.f ? fminf(a.clip, fmaxf(-a.clip, v)) : v; };
  const float z = lstm_sigmoid(clipped(xw[0] + hr[0]));
  const float reset = lstm_sigmoid(clipped(xw[1] + hr[1]));
  const float candidate = tanhf(clipped(xw[2] + reset * hr[2]));
  const float h = (1.f - z) * candidate + z * h_prev[j];
  a.state[((step + 1) % 2) * plane + unit + j] = h;
  if (a.y) {
    const int64_t at = a.layout == 0 ? ((t * a.dirs + d) * a.batch + n) * a.hidden + j : ((n * a.seq + t) * a.dirs + d) * a.hidden + j;
    a.y[at] = from_float<T>(h);
  }
  if (step == a.seq - 1 && a.y_h) a.y_h[u.state] = from_float<T>(h);
}

template <class T>
cudaError_t launch_gru(const GruArgs<T>& a, cudaStream_t stream) {
  if (a.hidden < 1 || a.input < 1 || a.dirs < 1 || a.dirs > 2 || a.batch < 0 || a.seq < 0) return cudaErrorInvalidValue;
  const int64_t units = static_cast<int64_t>(a.dirs) * a.batch * a.hidden;
  if (units == 0) return cudaSuccess;
  constexpr int kThreads = 128;
  const unsigned blocks = static_cast<unsigned>((units + kThreads - 1) / kThreads);
  // hidden buffer 0 := initial_h (or zeros): the LSTM's init kernel over the same fields
  LstmArgs<T> init{};
  init.initial_h = a.initial_h;
  init.state = a.state;
  init.batch = a.batch;
  init.hidden = a.hidden;
  init.dirs = a.dirs;
  init.layout = a.layout;
  lstm_init_kernel<T><<<blocks, kThreads, 0, stream>>>(init);
  for (int64_t step = 0; step < a.seq; ++step) gru_step_kernel<T><<<blocks, kThreads, 0, stream>>>(a, step);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
