// N-API binding of sgemm.c with a persistent pool of threads (the calling thread is one of them).
// The JS side passes the raw memory of TF.js tensors: the wasm backend's heap (one ArrayBuffer,
// byte offsets into it) or the cpu backend's Float32Arrays. The call is synchronous, as the
// kernels it replaces are.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "gelu.h"
#include "layer-norm.h"
#include "sgemm.h"

enum { MAX_THREADS = 64 };
// Below this many multiply-adds a product runs on the calling thread alone: waking the pool
// costs more than it saves.
static const double PARALLEL_MIN_MACS = 1 << 20;

static const char *isa;
static int threads = 1, started = 1; // pool size wanted / threads running (the caller counts)
static float *workspace[MAX_THREADS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER, work_done = PTHREAD_COND_INITIALIZER;
// The job: `job_fn(job_arg, part, job_parts, workspace)` for every part.
typedef void (*part_fn)(const void *arg, int part, int parts, float *workspace);
static part_fn job_fn;
static const void *job_arg;
static int job_parts, job_pending;
static unsigned long job_generation;

static void *worker(void *arg) {
  const int id = (int)(size_t)arg;
  // From 0, not the current generation: a job posted before this thread first takes the lock
  // may already count on it. Older jobs are skipped below: their parts were all < this id
  // (a job has at most `threads` parts, and threads are only added at ids >= `started`).
  unsigned long seen = 0;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (job_generation == seen) pthread_cond_wait(&work_ready, &mu);
    seen = job_generation;
    if (id >= job_parts) continue;
    const part_fn fn = job_fn;
    const void *arg = job_arg;
    const int parts = job_parts;
    pthread_mutex_unlock(&mu);
    fn(arg, id, parts, workspace[id]);
    pthread_mutex_lock(&mu);
    if (--job_pending == 0) pthread_cond_signal(&work_done);
  }
  return NULL;
}

static int ensure_workspace(int id) {
  if (!workspace[id]) workspace[id] = malloc(vlm_sgemm_workspace_floats() * sizeof(float));
  return workspace[id] != NULL;
}

// One job at a time: the pool and workspace[0] are process-wide, and worker_threads of one
// process share this addon.
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;

// Runs `fn` in `parts` parts (at most `threads`), the calling thread taking part 0.
static void run_parts(part_fn fn, const void *arg, int parts) {
  pthread_mutex_lock(&run_mu);
  if (parts > threads) parts = threads;
  if (parts > 1) {
    pthread_mutex_lock(&mu);
    job_fn = fn, job_arg = arg, job_parts = parts, job_pending = parts - 1, job_generation++;
    pthread_cond_broadcast(&work_ready);
    pthread_mutex_unlock(&mu);
  }
  fn(arg, 0, parts, workspace[0]);
  if (parts > 1) {
    pthread_mutex_lock(&mu);
    while (job_pending > 0) pthread_cond_wait(&work_done, &mu);
    pthread_mutex_unlock(&mu);
  }
  pthread_mutex_unlock(&run_mu);
}

static void sgemm_part(const void *arg, int part, int parts, float *ws) { vlm_sgemm_part(arg, part, parts, ws); }
static void gelu_part(const void *arg, int part, int parts, float *ws) { (void)ws, vlm_gelu_part(arg, part, parts); }
static void gelu_grad_part(const void *arg, int part, int parts, float *ws) { (void)ws, vlm_gelu_grad_part(arg, part, parts); }
static void layer_norm_part(const void *arg, int part, int parts, float *ws) { (void)ws, vlm_layer_norm_part(arg, part, parts); }
static void layer_norm_grad_part(const void *arg, int part, int parts, float *ws) { (void)ws, vlm_layer_norm_grad_part(arg, part, parts); }
static void layer_norm_param_grad_part(const void *arg, int part, int parts, float *ws) {
  (void)ws, vlm_layer_norm_param_grad_part(arg, part, parts);
}

static void run(const vlm_sgemm_args *g) {
  const double macs = (double)g->batch * g->m * g->n * g->k;
  run_parts(sgemm_part, g, macs < PARALLEL_MIN_MACS ? 1 : threads);
}

// Elementwise kernels: below this many elements one thread does it all.
static const size_t PARALLEL_MIN_ELEMENTS = 1 << 15;

#define CHECK(call)                                                         \
  if ((call) != napi_ok) {                                                  \
    napi_throw_error(env, NULL, "vlm_matmul: N-API call failed: " #call);   \
    return NULL;                                                            \
  }

// The data pointer of an ArrayBuffer or a typed array (its view start), plus a byte offset.
static int pointer_arg(napi_env env, napi_value value, int64_t offset, float **out) {
  bool is_typed;
  void *data;
  size_t length;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok) return 0;
  if (is_typed) {
    napi_typedarray_type type;
    napi_value buffer;
    size_t byte_offset;
    if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &byte_offset) != napi_ok) return 0;
    if (type != napi_float32_array) return 0;
  } else if (napi_get_arraybuffer_info(env, value, &data, &length) != napi_ok) {
    return 0;
  }
  *out = (float *)((char *)data + offset);
  return 1;
}

// sgemm(a, aOffset, b, bOffset, c, cOffset, bias | null, biasOffset,
//       batch, m, n, k, transposeA, transposeB, strideA, strideB): C = op(A)·op(B) (+ bias)
static napi_value sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value argv[16];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 16) {
    napi_throw_type_error(env, NULL, "vlm_matmul.sgemm: expected 16 arguments");
    return NULL;
  }
  int64_t n[16];
  const int numeric[] = {1, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  for (size_t i = 0; i < sizeof numeric / sizeof *numeric; i++) CHECK(napi_get_value_int64(env, argv[numeric[i]], &n[numeric[i]]));
  float *a, *b, *c, *bias = NULL;
  napi_valuetype bias_type;
  CHECK(napi_typeof(env, argv[6], &bias_type));
  if (!pointer_arg(env, argv[0], n[1], &a) || !pointer_arg(env, argv[2], n[3], &b) || !pointer_arg(env, argv[4], n[5], &c) ||
      (bias_type != napi_null && !pointer_arg(env, argv[6], n[7], &bias))) {
    napi_throw_type_error(env, NULL, "vlm_matmul.sgemm: a, b, c and bias must be ArrayBuffers or Float32Arrays");
    return NULL;
  }
  const vlm_sgemm_args g = {a, b, bias, c, (int)n[8], (int)n[9], (int)n[10], (int)n[11], (int)n[12], (int)n[13], (size_t)n[14], (size_t)n[15]};
  run(&g);
  return NULL;
}

// gelu(x, xOffset, y, yOffset, n, tanhForm): y = GELU(x), exact (erf) or, where tanhForm is 1, the tanh form.
// geluGrad(x, xOffset, dy, dyOffset, dx, dxOffset, n, tanhForm): dx = dy·GELU'(x).
static napi_value gelu_binding(napi_env env, napi_callback_info info, int grad) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const size_t want = grad ? 8 : 6;
  if (argc != want) {
    napi_throw_type_error(env, NULL, grad ? "vlm_matmul.geluGrad: expected 8 arguments" : "vlm_matmul.gelu: expected 6 arguments");
    return NULL;
  }
  int64_t off[3], n, tanh_form;
  float *p[3];
  const int buffers = grad ? 3 : 2;
  for (int i = 0; i < buffers; i++) {
    CHECK(napi_get_value_int64(env, argv[2 * i + 1], &off[i]));
    if (!pointer_arg(env, argv[2 * i], off[i], &p[i])) {
      napi_throw_type_error(env, NULL, "vlm_matmul.gelu: buffers must be ArrayBuffers or Float32Arrays");
      return NULL;
    }
  }
  CHECK(napi_get_value_int64(env, argv[want - 2], &n));
  CHECK(napi_get_value_int64(env, argv[want - 1], &tanh_form));
  if (n <= 0) return NULL;
  const vlm_gelu_args g = {p[0], grad ? p[1] : NULL, p[buffers - 1], (size_t)n, tanh_form != 0};
  run_parts(grad ? gelu_grad_part : gelu_part, &g, (size_t)n < PARALLEL_MIN_ELEMENTS ? 1 : threads);
  return NULL;
}
static napi_value gelu(napi_env env, napi_callback_info info) { return gelu_binding(env, info, 0); }
static napi_value gelu_grad(napi_env env, napi_callback_info info) { return gelu_binding(env, info, 1); }

// `count` (buffer, byte offset) pairs from argv[0…2·count): ArrayBuffers or Float32Arrays, or
// null where `nullable` has bit i set (the pointer is then NULL).
static int buffer_args(napi_env env, napi_value *argv, int count, unsigned nullable, float **out) {
  for (int i = 0; i < count; i++) {
    int64_t offset;
    napi_valuetype type;
    if (napi_typeof(env, argv[2 * i], &type) != napi_ok || napi_get_value_int64(env, argv[2 * i + 1], &offset) != napi_ok) return 0;
    if (type == napi_null && (nullable >> i & 1)) {
      out[i] = NULL;
      continue;
    }
    if (!pointer_arg(env, argv[2 * i], offset, &out[i])) return 0;
  }
  return 1;
}

// layerNorm(x, xOffset, gamma | null, gammaOffset, beta | null, betaOffset, y, yOffset,
//           mean, meanOffset, rstd, rstdOffset, rows, width, eps)
// layerNormGrad(dy, dyOffset, x, xOffset, gamma | null, gammaOffset, mean, meanOffset,
//               rstd, rstdOffset, dx, dxOffset, rows, width)
// layerNormParamGrad(dy, dyOffset, x, xOffset, mean, meanOffset, rstd, rstdOffset,
//                    dgamma, dgammaOffset, dbeta, dbetaOffset, rows, width)
static napi_value layer_norm_binding(napi_env env, napi_callback_info info, int which) {
  static const char *names[] = {"vlm_matmul.layerNorm", "vlm_matmul.layerNormGrad", "vlm_matmul.layerNormParamGrad"};
  const size_t want = which == 0 ? 15 : 14;
  size_t argc = 15;
  napi_value argv[15];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *p[6];
  int64_t rows, width;
  double eps = 0;
  if (argc != want || !buffer_args(env, argv, 6, which == 2 ? 0 : which == 0 ? 6 : 4, p) ||
      napi_get_value_int64(env, argv[12], &rows) != napi_ok || napi_get_value_int64(env, argv[13], &width) != napi_ok ||
      (which == 0 && napi_get_value_double(env, argv[14], &eps) != napi_ok) || rows < 0 || width < 0 ||
      (which == 0 && (p[1] == NULL) != (p[2] == NULL))) {
    char message[160];
    snprintf(message, sizeof message, "%s: expected %zu arguments: (buffer, byte offset) × 6, rows, width%s", names[which], want,
             which == 0 ? ", eps (gamma and beta both or neither)" : "");
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  if (rows == 0 || width == 0) {
    // Empty: the statistics of an empty row are NaN (0/0), the sums over no rows 0.
    if (which == 0)
      for (int64_t r = 0; r < rows; r++) p[4][r] = p[5][r] = NAN;
    if (which == 2) memset(p[4], 0, (size_t)width * sizeof(float)), memset(p[5], 0, (size_t)width * sizeof(float));
    return NULL;
  }
  vlm_layer_norm_args g = {0};
  g.rows = (size_t)rows, g.width = (size_t)width, g.eps = eps;
  part_fn fn;
  if (which == 0) {
    g.x = p[0], g.gamma = p[1], g.beta = p[2], g.y = p[3], g.mean = p[4], g.rstd = p[5];
    fn = layer_norm_part;
  } else if (which == 1) {
    g.dy = p[0], g.x = p[1], g.gamma = p[2], g.mean = p[3], g.rstd = p[4], g.y = p[5];
    fn = layer_norm_grad_part;
  } else {
    g.dy = p[0], g.x = p[1], g.mean = p[2], g.rstd = p[3], g.dgamma = p[4], g.dbeta = p[5];
    fn = layer_norm_param_grad_part;
  }
  run_parts(fn, &g, g.rows * g.width < PARALLEL_MIN_ELEMENTS ? 1 : threads);
  return NULL;
}
static napi_value layer_norm(napi_env env, napi_callback_info info) { return layer_norm_binding(env, info, 0); }
static napi_value layer_norm_grad(napi_env env, napi_callback_info info) { return layer_norm_binding(env, info, 1); }
static napi_value layer_norm_param_grad(napi_env env, napi_callback_info info) { return layer_norm_binding(env, info, 2); }

// setThreads(n): grows the pool to n threads (it never shrinks; extra threads just sleep).
static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t want;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &want));
  if (want < 1) want = 1;
  if (want > MAX_THREADS) want = MAX_THREADS;
  for (; started < want; started++) {
    pthread_t t;
    if (!ensure_workspace(started) || pthread_create(&t, NULL, worker, (void *)(size_t)started) != 0) break;
    pthread_detach(t);
  }
  threads = want < started ? want : started;
  napi_value out;
  CHECK(napi_create_int32(env, threads, &out));
  return out;
}

static napi_value info_fn(napi_env env, napi_callback_info cb) {
  napi_value out, v;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, out, "isa", v));
  CHECK(napi_create_int32(env, threads, &v));
  CHECK(napi_set_named_property(env, out, "threads", v));
  CHECK(napi_create_int32(env, (int32_t)sysconf(_SC_NPROCESSORS_ONLN), &v));
  CHECK(napi_set_named_property(env, out, "cpus", v));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!isa) isa = vlm_sgemm_init();
  if (!ensure_workspace(0)) {
    napi_throw_error(env, NULL, "vlm_matmul: out of memory for the packing buffer");
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"sgemm", NULL, sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, layer_norm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormGrad", NULL, layer_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormParamGrad", NULL, layer_norm_param_grad, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, info_fn, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof *props, props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
