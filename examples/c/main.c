/* The mlx-bun engine from C: arrays, evaluation, a gradient and DLPack, through mlxbun.h.
 *
 *   zig build                                   # installs zig-out/{lib,include}, mlxbun.pc, CMake config
 *   cmake -S examples/c -B build -DCMAKE_PREFIX_PATH=$PWD/zig-out && cmake --build build
 *   ./build/mlxbun_example
 *
 * Every call returns a handle (0 on error) or a status (negative on error); the reason is in
 * mlxb_last_error_message(). Handles are released with mlxb_array_free. Run by
 * test/c_example.test.ts, which checks the printed values (computed by hand in the comments). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "mlxbun.h"

/* DLPack 1.x's DLManagedTensorVersioned, declared from the spec's layout (a real program
 * includes dlpack.h, https://github.com/dmlc/dlpack). */
typedef struct { uint32_t major, minor; } DLPackVersion;
typedef struct { int32_t device_type, device_id; } DLDevice; /* device_type 1 = CPU */
typedef struct { uint8_t code, bits; uint16_t lanes; } DLDataType; /* code 2 = float */
typedef struct {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides; /* NULL: row-major */
  uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(struct DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
} DLManagedTensorVersioned;

#define CHECK(x)                                                                               \
  do {                                                                                         \
    if (!(x)) {                                                                                \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, mlxb_last_error_message()); \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

static const int32_t S = -1; /* the default stream */

static void print_floats(const char* label, const float* v, int n) {
  printf("%s [", label);
  for (int i = 0; i < n; i++) printf(i ? ", %g" : "%g", v[i]);
  printf("]\n");
}

static int deleter_calls = 0;
static void count_deleter(DLManagedTensorVersioned* self) {
  (void)self;
  deleter_calls++;
}

int main(void) {
  CHECK(mlxb_abi_version() == MLXB_ABI_VERSION);

  /* 1. Arrays and lazy evaluation: a = [[1, 2, 3], [4, 5, 6]]; sum(a * 2 + 1) = 2 * 21 + 6 = 48. */
  const float a_data[6] = {1, 2, 3, 4, 5, 6};
  const int32_t a_shape[2] = {2, 3};
  uint32_t a = mlxb_array_from_data(a_data, MLXB_DTYPE_FLOAT32, a_shape, 2, S);
  uint32_t two = mlxb_array_scalar(2, MLXB_DTYPE_FLOAT32, S);
  uint32_t one = mlxb_array_scalar(1, MLXB_DTYPE_FLOAT32, S);
  uint32_t t = mlxb_binary(MLXB_BINARY_OP_MULTIPLY, a, two, S);
  uint32_t u = mlxb_binary(MLXB_BINARY_OP_ADD, t, one, S);
  const int32_t all_axes[2] = {0, 1};
  uint32_t total = mlxb_reduce(MLXB_REDUCE_OP_SUM, u, all_axes, 2, 0, S);
  CHECK(a && two && one && t && u && total);
  CHECK(mlxb_array_is_evaluated(total) == 0); /* nothing computed yet */
  CHECK(mlxb_eval(&total, 1) == 0);
  float total_v = 0;
  CHECK(mlxb_array_read(total, &total_v, MLXB_DTYPE_FLOAT32) == 0);
  printf("sum(a * 2 + 1) = %g (ndim %d)\n", total_v, mlxb_array_ndim(total));

  /* Bad input gives MLX's message, never a crash. */
  const int32_t bad_shape[2] = {4, 2};
  CHECK(mlxb_reshape(a, bad_shape, 2, S) == 0);
  printf("error: %s\n", mlxb_last_error_message());
  mlxb_clear_error();

  /* 2. A gradient: d/dx sum(x^3) = 3 x^2, at x = [1, 2, 3]: [3, 12, 27]. */
  const float x_data[3] = {1, 2, 3};
  const int32_t x_shape[1] = {3};
  uint32_t x = mlxb_array_from_data(x_data, MLXB_DTYPE_FLOAT32, x_shape, 1, S);
  mlxb_trace_begin();
  uint32_t xt = mlxb_tracer(x, S); /* the variable to differentiate with respect to */
  uint32_t x2 = mlxb_binary(MLXB_BINARY_OP_MULTIPLY, xt, xt, S);
  uint32_t x3 = mlxb_binary(MLXB_BINARY_OP_MULTIPLY, x2, xt, S);
  const int32_t axis0[1] = {0};
  uint32_t y = mlxb_reduce(MLXB_REDUCE_OP_SUM, x3, axis0, 1, 0, S);
  uint32_t cot = mlxb_array_scalar(1, MLXB_DTYPE_FLOAT32, S); /* dy/dy */
  CHECK(xt && x2 && x3 && y && cot);
  CHECK(mlxb_vjp(&y, 1, &xt, 1, &cot, S) == 1);
  uint32_t dx = mlxb_results_take(0);
  mlxb_trace_end();
  CHECK(dx != 0);
  float dx_v[3], y_v = 0;
  CHECK(mlxb_array_read(dx, dx_v, MLXB_DTYPE_FLOAT32) == 0);
  CHECK(mlxb_array_read(y, &y_v, MLXB_DTYPE_FLOAT32) == 0);
  printf("sum(x^3) = %g\n", y_v);
  print_floats("grad sum(x^3) at [1, 2, 3] =", dx_v, 3);

  /* 3. DLPack out: the engine's dx as a DLManagedTensorVersioned (float32, shape (3)). */
  DLManagedTensorVersioned* m = (DLManagedTensorVersioned*)mlxb_dlpack_export(dx, 0);
  CHECK(m != NULL);
  CHECK(m->dl_tensor.device.device_type == 1 && m->dl_tensor.dtype.code == 2 && m->dl_tensor.dtype.bits == 32);
  const float* exported = (const float*)((const char*)m->dl_tensor.data + m->dl_tensor.byte_offset);
  printf("dlpack export: ndim %d, shape (%lld), ", m->dl_tensor.ndim, (long long)m->dl_tensor.shape[0]);
  print_floats("data", exported, 3);
  m->deleter(m); /* the consumer is done with it */

  /* 4. DLPack in: our own 2 x 2 float32 buffer, viewed without a copy; sum = 1+2+3+4 = 10. */
  float mine[4] = {1, 2, 3, 4};
  int64_t mine_shape[2] = {2, 2};
  DLManagedTensorVersioned in = {{1, 1}, NULL, count_deleter, 0, {mine, {1, 0}, 2, {2, 32, 1}, mine_shape, NULL, 0}};
  uint32_t b = mlxb_dlpack_import(&in, 0);
  CHECK(b != 0);
  mine[3] = 40; /* a view: the engine sees the change; sum = 46 */
  uint32_t bs = mlxb_reduce(MLXB_REDUCE_OP_SUM, b, all_axes, 2, 0, S);
  float bs_v = 0;
  CHECK(mlxb_array_read(bs, &bs_v, MLXB_DTYPE_FLOAT32) == 0);
  printf("dlpack import: sum = %g\n", bs_v);

  uint32_t handles[] = {a, two, one, t, u, total, x, xt, x2, x3, y, cot, dx, b, bs};
  for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++) CHECK(mlxb_array_free(handles[i]) == 0);
  printf("deleter calls = %d, live handles = %u\n", deleter_calls, mlxb_live_handles());
  return 0;
}
