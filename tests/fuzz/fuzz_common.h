/* fuzz_common.h: what every libFuzzer target here starts with.
 *
 * - the libFuzzer entry points, declared (-Wmissing-prototypes);
 * - root_pool: APR is initialized once, and each input gets a subpool of
 *   root_pool that the target destroys when done with it;
 * - LLVMFuzzerInitialize doing just that, unless the target defines
 *   HGS3_FUZZ_OWN_INITIALIZE before including this header, to set up more
 *   (it then calls hgs3_fuzz_init() itself);
 * - hgs3_fuzz_same(), string equality where NULL equals only NULL.
 *
 * Each target is one .c file, so the static definitions here exist once
 * per fuzzer binary. */
#ifndef HGS3_FUZZ_COMMON_H
#define HGS3_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root_pool;

static inline void hgs3_fuzz_init(void)
{
    apr_initialize();
    apr_pool_create(&root_pool, NULL);
}

static inline int hgs3_fuzz_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

#ifndef HGS3_FUZZ_OWN_INITIALIZE
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hgs3_fuzz_init();
    return 0;
}
#endif

#endif /* HGS3_FUZZ_COMMON_H */
