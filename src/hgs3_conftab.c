/* hgs3_conftab.c: the machinery of a directive table (see hgs3_conftab.h). */
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "hgs3_conftab.h"

#define AT HGS3_FIELD_AT

static int field_unset(const void *conf, const hgs3_field *f)
{
    switch (f->type) {
    case HGS3_F_INT:
        return AT(conf, *f, int) == HGS3_CONF_UNSET;
    case HGS3_F_OFF:
        return AT(conf, *f, apr_off_t) == HGS3_CONF_UNSET;
    default:
        return AT(conf, *f, void *) == NULL;
    }
}

int hgs3_conf_given(const void *conf, const hgs3_conf_row *row)
{
    return !field_unset(conf, &row->f[0]);
}

void hgs3_conf_init(void *conf, const hgs3_conf_row *row, int defaults)
{
    int i;
    for (i = 0; i < HGS3_CONF_FIELDS; ++i) {
        const hgs3_field *f = &row->f[i];
        if (f->type == HGS3_F_INT) {
            AT(conf, *f, int) = defaults ? (int)row->def[i] : HGS3_CONF_UNSET;
        } else if (f->type == HGS3_F_OFF) {
            AT(conf, *f, apr_off_t) = defaults ? (apr_off_t)row->def[i] : HGS3_CONF_UNSET;
        } else if (f->type == HGS3_F_PTR) {
            AT(conf, *f, const void *) = (defaults && i == 0) ? row->sdef : NULL;
        }
    }
}

void hgs3_conf_copy(void *to, const void *from, const hgs3_conf_row *row)
{
    int i;
    for (i = 0; i < HGS3_CONF_FIELDS; ++i) {
        const hgs3_field *f = &row->f[i];
        if (f->type == HGS3_F_INT) {
            AT(to, *f, int) = AT(from, *f, int);
        } else if (f->type == HGS3_F_OFF) {
            AT(to, *f, apr_off_t) = AT(from, *f, apr_off_t);
        } else if (f->type == HGS3_F_PTR) {
            AT(to, *f, void *) = AT(from, *f, void *);
        }
    }
}

static void set_num(void *conf, const hgs3_field *f, apr_int64_t v)
{
    if (f->type == HGS3_F_OFF) {
        AT(conf, *f, apr_off_t) = (apr_off_t)v;
    } else {
        AT(conf, *f, int) = (int)v;
    }
}

static const char *fail(const hgs3_conf_ctx *ctx, const char *msg)
{
    return apr_psprintf(ctx->p, "%s: %s", ctx->name, msg ? msg : "invalid value");
}

const char *hgs3_conf_parse_int(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row, void *conf,
                                int argc, const char *const *argv)
{
    const char *msg = NULL;
    apr_int64_t v;
    int i;
    for (i = 0; i < argc && i < HGS3_CONF_FIELDS; ++i) {
        if (hgs3_confval_int(&v, argv[i], row->min, row->max, row->what, ctx->p, &msg)) {
            return fail(ctx, msg);
        }
        set_num(conf, &row->f[i], v);
    }
    return NULL;
}

const char *hgs3_conf_parse_pair(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row, void *conf,
                                 int argc, const char *const *argv)
{
    if (argc != 2) {
        return fail(ctx, "expected two values");
    }
    return hgs3_conf_parse_int(ctx, row, conf, argc, argv);
}

const char *hgs3_conf_parse_size(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row, void *conf,
                                 int argc, const char *const *argv)
{
    const char *msg = NULL;
    apr_int64_t v;
    (void)argc;
    if (hgs3_confval_size(&v, argv[0], row->min, row->max, ctx->p, &msg) != APR_SUCCESS) {
        return fail(ctx, msg);
    }
    set_num(conf, &row->f[0], v);
    return NULL;
}

const char *hgs3_conf_parse_enum(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row, void *conf,
                                 int argc, const char *const *argv)
{
    const char *name = row->what;
    apr_size_t n = 0, len = strlen(argv[0]);
    int i;
    (void)argc;
    for (i = 0; *name; ++i, name += n + (name[n] == '|')) {
        n = strcspn(name, "|");
        if (n == len && !strncasecmp(name, argv[0], n)) {
            set_num(conf, &row->f[0], i);
            return NULL;
        }
    }
    return apr_psprintf(ctx->p, "%s: expected %s, not '%s'", ctx->name, row->what, argv[0]);
}

const char *hgs3_conf_parse_string(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row, void *conf,
                                   int argc, const char *const *argv)
{
    const char *msg = NULL;
    (void)argc;
    if (row->check && row->check(ctx->p, argv[0], &msg) != APR_SUCCESS) {
        return fail(ctx, msg);
    }
    AT(conf, row->f[0], const char *) = argv[0];
    return NULL;
}

const char *hgs3_conf_parse_list(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row, void *conf,
                                 int argc, const char *const *argv)
{
    apr_array_header_t *a = apr_array_make(ctx->p, argc > 0 ? argc : 1, sizeof(const char *));
    const char *msg = NULL;
    int i;
    if (argc < 1) {
        return fail(ctx, "name at least one value");
    }
    for (i = 0; i < argc; ++i) {
        if (row->check && row->check(ctx->p, argv[i], &msg) != APR_SUCCESS) {
            return fail(ctx, msg);
        }
        APR_ARRAY_PUSH(a, const char *) = argv[i];
    }
    AT(conf, row->f[0], apr_array_header_t *) = a;
    return NULL;
}
