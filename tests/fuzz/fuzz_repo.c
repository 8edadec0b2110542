/* fuzz_repo.c: libFuzzer target for repository mapping (hgs3_repo_find) and
 * the state fingerprint. The input is the raw URL path below the Location.
 *
 * A fixed tree is created once, under a fresh directory in $TMPDIR (or /tmp),
 * and removed at exit:
 *   outside/.hg/requires                 outside the root
 *   root/.hg/requires, root/a, root/a/b, root/c d, root/%41  repositories
 *   root/plain/                          not a repository
 *   root/out -> ../outside, root/a/b/esc -> ../../../outside, root/self -> .
 *   root/in -> a
 * Checked: every success names a directory strictly inside realpath(root)
 * that holds .hg/requires, is its own realpath, and whose name and rest are
 * free of '.', '..' and empty segments; every failure leaves NULL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hgs3_err.h"
#include "hgs3_repo.h"
#define HGS3_FUZZ_OWN_INITIALIZE /* sets up a repository tree as well */
#include "fuzz_common.h"

static char base[4096];
static char *root_real;

static void cleanup(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (base[0] && system(cmd) != 0) {
        fprintf(stderr, "fuzz_repo: could not remove %s\n", base);
    }
}

static void mk(const char *rel, int repo)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    mkdir(path, 0755);
    if (repo) {
        FILE *fp;
        strcat(path, "/.hg");
        mkdir(path, 0755);
        strcat(path, "/requires");
        fp = fopen(path, "w");
        if (!fp) {
            abort();
        }
        fputs("revlogv1\nstore\n", fp);
        fclose(fp);
    }
}

static void ln(const char *target, const char *rel)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    if (symlink(target, path) != 0) {
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    char path[4400];
    (void)argc;
    (void)argv;
    hgs3_fuzz_init();
    snprintf(base, sizeof(base), "%s/hgs3-fuzz-repo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        abort();
    }
    atexit(cleanup);
    mk("outside", 1);
    mk("root", 1);
    mk("root/a", 1);
    mk("root/a/b", 1);
    mk("root/c d", 1);
    mk("root/%41", 1);
    mk("root/plain", 0);
    ln("../outside", "root/out");
    ln("../../../outside", "root/a/b/esc");
    ln(".", "root/self");
    ln("a", "root/in");
    snprintf(path, sizeof(path), "%s/root", base);
    root_real = realpath(path, NULL);
    if (!root_real) {
        abort();
    }
    return 0;
}

static void check_segments(const char *s, int may_be_empty)
{
    const char *seg = s;
    if (!*s) {
        if (!may_be_empty) {
            abort();
        }
        return;
    }
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) {
            abort();
        }
        if (!slash) {
            break;
        }
        seg = slash + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    hgs3_repo *repo = (hgs3_repo *)1;
    const char *raw;
    apr_status_t rv;

    apr_pool_create(&p, root_pool);
    raw = apr_pstrmemdup(p, (const char *)data, size);
    rv = hgs3_repo_find(&repo, p, root_real, raw);
    if (rv != APR_SUCCESS) {
        if (repo) {
            abort();
        }
    } else {
        size_t n = strlen(root_real);
        struct stat st;
        char *rp = realpath(repo->dir, NULL);
        if (strncmp(repo->dir, root_real, n) != 0 || repo->dir[n] != '/' || !repo->dir[n + 1]) {
            abort();
        }
        if (!rp || strcmp(rp, repo->dir) != 0) {
            abort();
        }
        free(rp);
        if (stat(apr_pstrcat(p, repo->dir, "/.hg/requires", NULL), &st) != 0 ||
            !S_ISREG(st.st_mode)) {
            abort();
        }
        if (strstr(repo->name, "\\")) {
            abort();
        }
        check_segments(repo->name, 0);
        check_segments(repo->rest, 1);
        if (hgs3_repo_fingerprint(repo, p) != APR_SUCCESS || !repo->fp || repo->fp_len < 2) {
            abort();
        }
    }
    apr_pool_destroy(p);
    return 0;
}
