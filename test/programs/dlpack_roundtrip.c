/* A C embedder's DLPack round trip through ffi/mlxbun.h (run by test/dlpack_c.test.ts):
 * export an engine array, read the DLManagedTensorVersioned fields, import it back without a
 * copy, import a tensor built by hand with a counting deleter, and check every deleter runs
 * exactly once. Prints "ok" and exits 0, or prints the first failed check and exits 1.
 *
 * The DLPack structs are declared here from the layout facts of dlpack.h v1.1 (a real
 * embedder includes dlpack.h instead). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mlxbun.h"

typedef struct { uint32_t major, minor; } Version;
typedef struct { int32_t device_type, device_id; } Device;
typedef struct { uint8_t code, bits; uint16_t lanes; } DataType;
typedef struct {
  void* data;
  Device device;
  int32_t ndim;
  DataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
} Tensor;
typedef struct Versioned {
  Version version;
  void* manager_ctx;
  void (*deleter)(struct Versioned*);
  uint64_t flags;
  Tensor dl_tensor;
} Versioned;

_Static_assert(sizeof(Tensor) == 48, "DLTensor is 48 bytes");
_Static_assert(sizeof(Versioned) == 80, "DLManagedTensorVersioned is 80 bytes");

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      printf("check failed at line %d: %s (%s)\n", __LINE__, #cond,              \
             mlxb_last_error_message());                                         \
      return 1;                                                                  \
    }                                                                            \
  } while (0)

static int deleter_calls = 0;
static void counting_deleter(Versioned* self) {
  (void)self;
  deleter_calls++;
}

int main(void) {
  CHECK(mlxb_abi_version() == MLXB_ABI_VERSION);

  /* Export the transpose of arange(6).reshape(2, 3): shape (3, 2), strides (1, 3). */
  uint32_t r = mlxb_arange(0, 6, 1, MLXB_DTYPE_FLOAT32, -1);
  int32_t shape23[2] = {2, 3};
  uint32_t a = mlxb_reshape(r, shape23, 2, -1);
  int32_t perm[2] = {1, 0};
  uint32_t t = mlxb_transpose(a, perm, 2, -1);
  CHECK(r && a && t);
  Versioned* m = (Versioned*)mlxb_dlpack_export(t, 0);
  CHECK(m != NULL);
  CHECK(mlxb_dlpack_live_exports() == 1);
  CHECK(m->version.major == 1 && m->deleter != NULL && m->flags == 1);
  CHECK(m->dl_tensor.device.device_type == 1 && m->dl_tensor.ndim == 2);
  CHECK(m->dl_tensor.dtype.code == 2 && m->dl_tensor.dtype.bits == 32 && m->dl_tensor.dtype.lanes == 1);
  CHECK(m->dl_tensor.shape[0] == 3 && m->dl_tensor.shape[1] == 2);
  CHECK(m->dl_tensor.strides[0] == 1 && m->dl_tensor.strides[1] == 3);
  const float* first = (const float*)((const char*)m->dl_tensor.data + m->dl_tensor.byte_offset);
  CHECK(first[0] == 0 && first[1] == 1 && first[3] == 3); /* element (0,1) is 3 */
  mlxb_array_free(r);
  mlxb_array_free(a);
  mlxb_array_free(t);

  /* Import it back, no copy: the engine now owns m and calls its deleter exactly once. */
  uint32_t b = mlxb_dlpack_import(m, 0);
  CHECK(b != 0);
  float out[6];
  CHECK(mlxb_array_read(b, out, MLXB_DTYPE_FLOAT32) == 0);
  const float want[6] = {0, 3, 1, 4, 2, 5};
  CHECK(memcmp(out, want, sizeof out) == 0);
  CHECK(mlxb_dlpack_live_exports() == 1);
  mlxb_array_free(b);
  CHECK(mlxb_dlpack_live_exports() == 0);

  /* A tensor of our own: int64 data, viewed in place; the deleter runs when the array goes. */
  int64_t data[4] = {7, 8, 9, 10};
  int64_t shape[1] = {4};
  Versioned mine = {{1, 1}, NULL, counting_deleter, 0,
                    {data, {1, 0}, 1, {0, 64, 1}, shape, NULL, 0}};
  uint32_t c = mlxb_dlpack_import(&mine, -1);
  CHECK(c != 0 && deleter_calls == 0);
  data[0] = -7; /* a view: the array sees it */
  int64_t got[4];
  CHECK(mlxb_array_read(c, got, MLXB_DTYPE_INT64) == 0);
  CHECK(got[0] == -7 && got[3] == 10);
  mlxb_array_free(c);
  CHECK(deleter_calls == 1);

  /* A bad tensor (lanes = 2) fails, and is left to its owner. */
  mine.dl_tensor.dtype.lanes = 2;
  CHECK(mlxb_dlpack_import(&mine, -1) == 0);
  CHECK(strcmp(mlxb_last_error_message(), "[fromDlpack] Vector dtypes are not supported (lanes = 2); only lanes = 1.") == 0);
  CHECK(deleter_calls == 1);
  mlxb_clear_error();

  CHECK(mlxb_live_handles() == 0);
  printf("ok\n");
  return 0;
}
